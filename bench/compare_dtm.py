"""Sampling speed of the denoising thermodynamic model (DTM) on the binarized
8x8 digits, next to the raw Gibbs engine on the same graph and the monolithic
baseline (MEBM) at equal total sweeps, in one process run.

    python bench/compare.py --only dtm
    python bench/compare_dtm.py [--repeat 7] [--samples 1000]

The model is the default of ``heatbath train dtm-digits``: the degree-12 torus
of side 12 (144 nodes, 864 edges, 64 visible), T = 6 reverse steps, K = 20
sweeps per step. Its weights come from a one-epoch fit on 500 training images
(the throughput does not depend on them: a heat-bath update does the same work
for any coupling values). Measured, medians of interleaved runs:

- ``DTM.sample(n)``: samples per second, and its Gibbs rate in spin updates
  per nanosecond (free nodes x chains x T K sweeps / wall time of the whole
  call: x^T draw, per step a reseed of the step's kept engine, latent draws,
  row writes, sweeps, read-out as packed rows, one unpack at the end);
- the raw engine on the same work: for each step a ``SparseIsing`` over the
  same 144 + 64 nodes (the 64 input nodes clamped), the step's weights, the
  DTM's colouring and CSR storage, ``n`` chains, ``sweep(K)`` -- the kernel
  calls alone; the ratio DTM / engine is the Python cost around the kernels
  (issue 7 asks for at most 1.5x);
- for reference, the same sampling loop written by hand on
  :mod:`heatbath.ebm.packed_rows` around engines built by the bench
  (``packed_sample``; the form ``DTM.sample`` takes since it keeps its
  engines);
- ``MEBM.sample(n)`` with ``K_total = T K`` sweeps on the same graph.
The DTM's time is also split into its sweep calls and the rest.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heatbath  # noqa: E402
from heatbath.dtm import DTM, MEBM, torus_graph  # noqa: E402
from heatbath.ebm import SparseIsing  # noqa: E402
from heatbath.ebm.graphs import graph_from_edges  # noqa: E402
from heatbath.ebm.packed_rows import get_rows, random_rows, reseed, set_rows, unpack_rows  # noqa: E402
from timing import interleaved  # noqa: E402

SIDE, N_VISIBLE, IMAGE = 12, 64, (8, 8)  # heatbath train dtm-digits: side = 2 ceil(0.75 sqrt(64))
T, K = 6, 20
N_SAMPLES = 1000
FIT_IMAGES, FIT_EPOCHS = 500, 1


def build_models(device: str = "cpu") -> tuple:
    """(graph, DTM, MEBM) of the dtm-digits default, fitted for one epoch on
    CPU (a checkpoint round trip moves them to ``device``)."""
    from heatbath.data.digits import binarized_digits

    X = binarized_digits().X_train.astype(np.uint8)[:FIT_IMAGES]
    graph = torus_graph(SIDE, N_VISIBLE, image_shape=IMAGE)
    dtm = DTM(graph=graph, T=T, K=K, n_epochs=FIT_EPOCHS, progress=False, seed=0).fit(X)
    mebm = MEBM(graph=graph, K_total=T * K, n_epochs=FIT_EPOCHS, progress=False, seed=0).fit(X)
    if device != "cpu":
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            dtm = DTM.load(dtm.save(os.path.join(d, "dtm.npz")), device=device)
            mebm = MEBM.load(mebm.save(os.path.join(d, "mebm.npz")), device=device)
    return graph, dtm, mebm


def step_engines(dtm: DTM, n_chains: int, device: str = "cpu", storage: str = "csr") -> list:
    """One raw engine per reverse step, built like the DTM's: graph nodes, then
    input node k (coupled to visible node k by the step's forward coupling,
    coloured after its partner), inputs clamped to random x^T bits."""
    g = dtm.graph_
    n, nv = g.n_nodes, g.n_visible
    inputs = n + np.arange(nv, dtype=np.int64)
    i = np.concatenate([g.edges_i, g.visible])
    j = np.concatenate([g.edges_j, inputs])
    ncol = max(2, int(g.colours.max()) + 1)
    colours = np.concatenate([g.colours, (g.colours[g.visible] + 1) % ncol]).astype(np.int32)
    rng = np.random.default_rng(0)
    x_in = np.where(rng.random((n_chains, nv)) < 0.5, 1, -1).astype(np.int8)
    engines = []
    for t, step in enumerate(dtm.steps_):
        w = np.concatenate([step.weights, np.full(nv, step.coupling)])
        csr = graph_from_edges(n + nv, i, j, w, "edges")
        bias = np.concatenate([step.bias, np.zeros(nv)])
        eng = SparseIsing(csr, bias, n_chains=n_chains, colouring=colours, seed=t + 1, storage=storage,
                          device=device)
        eng.clamp(inputs, x_in)
        engines.append(eng)
    return engines


class SweepClock:
    """Accumulates the wall time spent in ``SparseIsing.sweep`` while active
    (``sync`` makes a device's work count where it is launched)."""

    def __init__(self, sync=None) -> None:
        self.seconds = 0.0
        self.sync = sync

    def __enter__(self) -> SweepClock:
        self._orig = SparseIsing.sweep
        clock = self

        def timed(eng, n=1):
            if clock.sync:
                clock.sync()
            t0 = time.perf_counter()
            out = clock._orig(eng, n)
            if clock.sync:
                clock.sync()
            clock.seconds += time.perf_counter() - t0
            return out

        SparseIsing.sweep = timed
        return self

    def __exit__(self, *exc) -> None:
        SparseIsing.sweep = self._orig


def split_sample(dtm: DTM, n: int, repeat: int, sync=None) -> tuple:
    """Median (total, in sweep calls) seconds of ``dtm.sample(n)``."""
    tot, ker = [], []
    dtm.sample(n, seed=1)
    for _ in range(repeat):
        with SweepClock(sync) as clock:
            t0 = time.perf_counter()
            dtm.sample(n, seed=1)
            if sync:
                sync()
            tot.append(time.perf_counter() - t0)
        ker.append(clock.seconds)
    return float(np.median(tot)), float(np.median(ker))


def packed_sample(graph, engines: list, n: int, seed: int):
    """The DTM's sampling loop on packed rows (:mod:`heatbath.ebm.packed_rows`):
    engines built once (inputs clamped once) and reseeded per call; per step
    random latent rows, visible and input rows = x^t, K sweeps, visible rows
    read back as words; one unpack at the end. The same distribution as
    ``DTM.sample`` (not the same random numbers): the reference for the
    cost of the sampler's Python around its sweep calls."""
    inputs = graph.n_nodes + np.arange(graph.n_visible)
    eng = engines[-1]
    random_rows(eng, inputs, seed, stream=99)  # x^T: fair bits
    x = get_rows(eng, inputs)
    for t in range(len(engines), 0, -1):
        eng = engines[t - 1]
        reseed(eng, seed * 64 + t)
        random_rows(eng, graph.latent, seed, stream=100 + t)
        set_rows(eng, graph.visible, x)
        set_rows(eng, inputs, x)
        eng.sweep(K)
        x = get_rows(eng, graph.visible)
    return ((unpack_rows(x, n) + 1) // 2).astype(np.uint8)


ROWS = (
    ("dtm", "DTM.sample (T K sweeps + Python steps)"),
    ("packed", "hand-written loop on packed rows"),
    ("csr", "raw engine, same graph (CSR, as the DTM)"),
    ("ell", "raw engine, same graph (ELL)"),
    ("mebm", f"MEBM.sample (K_total = T K = {T * K} sweeps)"),
)


def section_dtm(repeat: int, n: int = N_SAMPLES) -> None:
    t0 = time.perf_counter()
    graph, dtm, mebm = build_models()
    fit_s = time.perf_counter() - t0
    free = graph.n_nodes  # the inputs are clamped; every graph node is updated
    upd = free * n * T * K  # the MEBM (no inputs) updates the same nodes as often
    engines = {s: step_engines(dtm, n, storage=s) for s in ("csr", "ell")}
    packed_engines = step_engines(dtm, n)
    assert all(int(e.clamped.sum()) == graph.n_visible for e in engines["csr"])

    def run_engines(es):
        for e in es:
            e.sweep(K)

    print(
        f"\n== dtm: digits DTM (torus {SIDE}x{SIDE}: {graph.n_nodes} nodes, {graph.n_edges} edges, "
        f"{graph.n_visible} visible + {graph.n_visible} clamped inputs), T = {T}, K = {K}, {n} samples "
        f"(median of {repeat} interleaved runs; weights from a {FIT_EPOCHS}-epoch fit on {FIT_IMAGES} "
        f"images, {fit_s:.1f} s) =="
    )
    print(f"{'implementation':44s} {'threads':>7s} {'ms':>8s} {'samples/s':>10s} {'updates/ns':>11s} "
          f"{'time/eng':>9s}")
    for threads in (1, 2):
        with heatbath.threads(threads):
            t = interleaved(
                {
                    "dtm": lambda: dtm.sample(n, seed=1),
                    "packed": lambda: packed_sample(graph, packed_engines, n, 1),
                    "csr": lambda: run_engines(engines["csr"]),
                    "ell": lambda: run_engines(engines["ell"]),
                    "mebm": lambda: mebm.sample(n, seed=1),
                },
                repeat,
            )
            tot, ker = split_sample(dtm, n, max(3, repeat // 2))
        for key, label in ROWS:
            print(
                f"{label:44s} {threads:7d} {t[key] * 1e3:8.1f} {n / t[key]:10.0f} {upd / t[key] / 1e9:11.3f} "
                f"{t[key] / t['csr']:8.2f}x"
            )
        print(
            f"  DTM.sample / engine = {t['dtm'] / t['csr']:.2f}x (acceptance: within 1.5x), hand-written "
            f"packed loop {t['packed'] / t['csr']:.2f}x; DTM.sample split: {ker * 1e3:.1f} ms in sweep calls "
            f"({upd / ker / 1e9:.3f} updates/ns), {(tot - ker) * 1e3:.1f} ms around them "
            f"({(tot - ker) / tot:.0%})"
        )
    a = np.mean([dtm.sample(n, seed=s).mean(axis=0) for s in range(2, 6)], axis=0)
    b = np.mean([packed_sample(graph, packed_engines, n, s).mean(axis=0) for s in range(2, 6)], axis=0)
    se = np.sqrt(np.maximum(a * (1 - a), 1e-3) * 2 / (4 * n))
    print(f"pixel marginals, packed loop vs DTM.sample ({4 * n} samples each): max |z| = "
          f"{np.max(np.abs(a - b) / se):.1f} over {a.size} pixels (same distribution: about 3 or less)")


SECTIONS = {"dtm": section_dtm}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--samples", type=int, default=N_SAMPLES)
    args = ap.parse_args()
    print(f"heatbath {heatbath.__version__}, {os.cpu_count()} CPUs, CPU level {heatbath.cpu_level()}")
    section_dtm(args.repeat, args.samples)
