"""Gibbs sweeps: heatbath's lattice and sparse-graph samplers against
vectorized numpy/scipy implementations of the same samplers and, when it is
importable, Extropic's THRML (JAX), in one process run.

    python bench/compare.py --only ising_lattice --only ising_sparse
    python bench/compare_ising.py [--repeat 7]

ising_lattice: 2D periodic L = 1024 lattice at beta = 0.44 (near critical),
checkerboard heat-bath with exact 32-bit thresholds on both sides: numpy
(compressed sublattices, precomputed threshold table, np.roll neighbours,
uint32 words from PCG64)
and heatbath (multi-spin coded, Philox, bit-sliced comparison), one and two
threads.

ising_sparse: the graph of Extropic's denoising thermodynamic models (70 x 70
periodic grid, offsets (0,1), (4,1), (10,9) and their 90-degree rotations,
degree 12, 4,900 nodes, two colours by the parity of i + j), random normal
couplings, 1,000 chains: scipy.sparse block Gibbs (numpy), THRML, heatbath.

Throughput is spin updates per nanosecond (sweeps x sites x chains / time);
ratios are peer time / heatbath time for the same work.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heatbath  # noqa: E402
from heatbath.ebm import IsingLattice, SparseIsing  # noqa: E402
from heatbath.ebm.graphs import dtm_grid_edges  # noqa: E402
from heatbath.ebm.lattice import ising_thresholds  # noqa: E402
from timing import interleaved  # noqa: E402

L = 1024
BETA_LATTICE = 0.44
LATTICE_SWEEPS = 10
SPARSE_CHAINS = 1000
SPARSE_SWEEPS = 10
BETA_SPARSE = 1.0


class NumpyCheckerboard:
    """Vectorized numpy heat-bath checkerboard for a periodic 2D lattice, on
    the two sublattices stored compressed (shape (L, L/2) each, int8): P(up |
    k up neighbours) precomputed as 32-bit integer thresholds floor(p 2^32)
    (the same table heatbath uses), compared with uint32 words from PCG64;
    neighbours by np.roll. Site x = 2k + ((y + c) mod 2) of row y is element
    [y, k] of colour c; its other-colour neighbours are [y +- 1, k], [y, k]
    and [y, k - 1] (when (y + c) is even) or [y, k + 1] (odd)."""

    def __init__(self, L: int, beta: float, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.sub = [np.where(self.rng.random((L, L // 2)) < 0.5, 1, -1).astype(np.int8) for _ in (0, 1)]
        k = np.arange(5)
        p = 1.0 / (1.0 + np.exp(-2.0 * beta * (2.0 * k - 4)))
        t = np.floor(p * 2.0**32)
        assert t.max() < 2.0**32
        self.t = t.astype(np.uint32)  # index: number of up neighbours
        self.shifted = np.empty((L, L // 2), dtype=np.int8)

    def sweep(self, n: int) -> None:
        for _ in range(n):
            for c in (0, 1):
                o = self.sub[1 - c]
                sh = self.shifted
                # rows with (y + c) even look left (k - 1), odd rows right (k + 1)
                sh[c::2] = np.roll(o[c::2], 1, axis=1)
                sh[1 - c :: 2] = np.roll(o[1 - c :: 2], -1, axis=1)
                nb = np.roll(o, 1, axis=0) + np.roll(o, -1, axis=0) + o + sh
                kup = (nb + 4) >> 1
                u = self.rng.integers(0, 2**32, size=o.shape, dtype=np.uint32)
                self.sub[c] = np.where(u < self.t[kup], np.int8(1), np.int8(-1))

    def energy_per_spin(self) -> float:
        a, b = self.sub[0].astype(np.int64), self.sub[1].astype(np.int64)
        sh = np.empty_like(b)
        sh[0::2] = np.roll(b[0::2], 1, axis=1)
        sh[1::2] = np.roll(b[1::2], -1, axis=1)
        nb = np.roll(b, 1, axis=0) + np.roll(b, -1, axis=0) + b + sh
        return float(-(a * nb).sum() / (2 * a.size))


def section_lattice(repeat: int) -> None:
    n_upd = LATTICE_SWEEPS * L * L
    peer = NumpyCheckerboard(L, BETA_LATTICE)
    lat = IsingLattice((L, L), beta=BETA_LATTICE, seed=1)
    th = ising_thresholds(np.array([BETA_LATTICE]), 1.0, 0.0, 4, "heatbath")
    assert th.shape == (1, 33)
    print(
        f"\n== ising_lattice: 2D L = {L}, beta = {BETA_LATTICE}, heat-bath checkerboard, {LATTICE_SWEEPS} sweeps "
        f"(median of {repeat} interleaved runs) =="
    )
    print(f"{'implementation':36s} {'threads':>7s} {'ms/sweep':>9s} {'updates/ns':>11s} {'vs numpy':>9s}")
    rows = {}
    for threads in (1, 2):
        with heatbath.threads(threads):
            t = interleaved(
                {"numpy": lambda: peer.sweep(LATTICE_SWEEPS), "hb": lambda: lat.sweep(LATTICE_SWEEPS)}, repeat
            )
        rows[threads] = t
        if threads == 1:
            print(
                f"{'numpy checkerboard (32-bit table)':36s} {1:7d} {t['numpy'] / LATTICE_SWEEPS * 1e3:9.2f} "
                f"{n_upd / t['numpy'] / 1e9:11.3f} {'1.00x':>9s}"
            )
        print(
            f"{'heatbath IsingLattice (MSC)':36s} {threads:7d} {t['hb'] / LATTICE_SWEEPS * 1e3:9.3f} "
            f"{n_upd / t['hb'] / 1e9:11.3f} {t['numpy'] / t['hb']:8.1f}x"
        )
    # a physics sanity line from the same runs (both near beta_c after the same number of sweeps)
    print(
        f"energy per spin after the runs: heatbath {lat.energy()[0]:.4f}, numpy {peer.energy_per_spin():.4f} "
        f"(Onsager at beta_c: -1.4142)"
    )


def _dtm_problem():
    i, j, w, colours = dtm_grid_edges(side=70, seed=0)
    return i, j, w, colours


class ScipyBlockGibbs:
    """Block Gibbs with scipy.sparse: per colour, fields F = J[block] @ S + b,
    p = sigmoid(2 beta F), S[block] = where(u < p, 1, -1); S is float32
    (n, chains)."""

    def __init__(self, i, j, w, colours, chains: int, beta: float, seed: int = 0) -> None:
        import scipy.sparse as sp

        n = int(colours.size)
        J = (
            sp.coo_matrix(
                (np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n)
            )
            .tocsr()
            .astype(np.float32)
        )
        self.blocks = [np.flatnonzero(colours == c) for c in range(int(colours.max()) + 1)]
        self.J = [J[b] for b in self.blocks]
        self.rng = np.random.default_rng(seed)
        self.S = np.where(self.rng.random((n, chains)) < 0.5, 1.0, -1.0).astype(np.float32)
        self.two_beta = np.float32(2.0 * beta)

    def sweep(self, n: int) -> None:
        for _ in range(n):
            for b, Jb in zip(self.blocks, self.J):
                F = Jb @ self.S
                p = 1.0 / (1.0 + np.exp(-self.two_beta * F))
                u = self.rng.random(F.shape, dtype=np.float32)
                self.S[b] = np.where(u < p, np.float32(1.0), np.float32(-1.0))


def _thrml_runner(i, j, w, colours, chains: int, beta: float, sweeps: int):
    """A callable running ``sweeps`` THRML block-Gibbs sweeps of ``chains``
    chains (vmapped, jitted), or None when thrml is not importable."""
    try:
        import jax
        import jax.numpy as jnp
        from thrml import Block, SamplingSchedule, SpinNode, sample_states
        from thrml.models import IsingEBM, IsingSamplingProgram, hinton_init
    except Exception as exc:  # pragma: no cover - optional peer
        print(f"(THRML not measured: {type(exc).__name__}: {exc})")
        return None
    n = int(colours.size)
    nodes = [SpinNode() for _ in range(n)]
    edges = [(nodes[a], nodes[b]) for a, b in zip(i.tolist(), j.tolist())]
    model = IsingEBM(nodes, edges, jnp.zeros((n,)), jnp.asarray(w), jnp.array(beta))
    free_blocks = [Block([nodes[k] for k in np.flatnonzero(colours == c)]) for c in (0, 1)]
    program = IsingSamplingProgram(model, free_blocks, clamped_blocks=[])
    schedule = SamplingSchedule(n_warmup=sweeps - 1, n_samples=1, steps_per_sample=1)
    keys = jax.random.split(jax.random.key(0), chains)
    init = jax.vmap(lambda k: hinton_init(k, model, free_blocks, ()))(keys)

    @jax.jit
    def run(keys, init):
        return jax.vmap(lambda k, s: sample_states(k, program, schedule, s, [], [Block(nodes)]))(keys, init)

    def go():
        out = run(keys, init)
        jax.block_until_ready(out)

    go()  # compile
    return go


def section_sparse(repeat: int) -> None:
    i, j, w, colours = _dtm_problem()
    n = colours.size
    n_upd = SPARSE_SWEEPS * n * SPARSE_CHAINS
    model = SparseIsing.from_edges(
        n,
        list(zip(i.tolist(), j.tolist())),
        w,
        beta=BETA_SPARSE,
        n_chains=SPARSE_CHAINS,
        colouring=colours,
        seed=1,
        storage="ell",
    )
    peer = ScipyBlockGibbs(i, j, w, colours, SPARSE_CHAINS, BETA_SPARSE)
    print(
        f"\n== ising_sparse: DTM graph (70x70 periodic, degree 12, {n} nodes, 2 colours), {SPARSE_CHAINS} chains, "
        f"{SPARSE_SWEEPS} sweeps (median of {repeat} interleaved runs, 0.25 s apart) =="
    )
    t0 = time.perf_counter()
    thrml = _thrml_runner(i, j, w, colours, SPARSE_CHAINS, BETA_SPARSE, SPARSE_SWEEPS)
    if thrml is not None:
        print(f"(THRML compile + first run: {time.perf_counter() - t0:.1f} s)")
    print(
        f"{'implementation':36s} {'threads':>7s} {'ms/sweep':>9s} {'updates/ns':>11s} {'vs scipy':>9s} "
        f"{'vs THRML':>9s}"
    )
    for threads in (1, 2):
        fns = {"scipy": lambda: peer.sweep(SPARSE_SWEEPS), "hb": lambda: model.sweep(SPARSE_SWEEPS)}
        if thrml is not None:
            fns["thrml"] = thrml
        with heatbath.threads(threads):
            # a pause before each timed call: XLA's worker threads spin for a while after a THRML
            # call and would otherwise take a core from whatever runs next
            t = interleaved(fns, repeat, pause=0.25)
        if threads == 1:
            print(
                f"{'numpy/scipy.sparse block Gibbs':36s} {1:7d} {t['scipy'] / SPARSE_SWEEPS * 1e3:9.2f} "
                f"{n_upd / t['scipy'] / 1e9:11.3f} {'1.00x':>9s}"
            )
            if thrml is not None:
                print(
                    f"{'THRML (JAX CPU, vmap over chains)':36s} {'all':>7s} {t['thrml'] / SPARSE_SWEEPS * 1e3:9.2f} "
                    f"{n_upd / t['thrml'] / 1e9:11.3f} {t['scipy'] / t['thrml']:8.2f}x {'1.00x':>9s}"
                )
        vs_thrml = f"{t['thrml'] / t['hb']:8.1f}x" if thrml is not None else f"{'n/a':>9s}"
        print(
            f"{'heatbath SparseIsing (ELL)':36s} {threads:7d} {t['hb'] / SPARSE_SWEEPS * 1e3:9.3f} "
            f"{n_upd / t['hb'] / 1e9:11.3f} {t['scipy'] / t['hb']:8.1f}x {vs_thrml}"
        )


SECTIONS = {"ising_lattice": section_lattice, "ising_sparse": section_sparse}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", choices=sorted(SECTIONS), action="append")
    args = ap.parse_args()
    print(f"heatbath {heatbath.__version__}, {os.cpu_count()} CPUs, CPU level {heatbath.cpu_level()}")
    for name in args.only or list(SECTIONS):
        SECTIONS[name](args.repeat)
