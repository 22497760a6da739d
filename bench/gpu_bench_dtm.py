"""GPU speed of the denoising thermodynamic model (run by bench/gpu_check.sh).

Sampling: the measurement of ``bench/compare_dtm.py`` with device='cuda' --
DTM.sample in samples per second and its Gibbs rate next to the raw CUDA
engine on the same graph and chain count (T K sweeps of one SparseIsing per
step, kernel calls alone), the same loop on packed rows, and the MEBM at
equal total sweeps. Models are fitted for one epoch on the CPU and moved to
the GPU through a checkpoint. Every timed call ends with a device synchronize
(DTM.sample returns host arrays anyway); medians of interleaved runs.

Training (``--train-data DIR``, a folder with the Fashion-MNIST IDX files,
e.g. /usr/share/datasets/fashion-mnist from the Debian package
dataset-fashion-mnist): one full epoch of the 70x70 model of
``heatbath train dtm-digits --data DIR --side 70 --T 8 --epochs 1 --device
cuda`` (60,000 images, T = 8, K = 20, batches of 250, 4 positive sweeps, 10 +
24 negative sweeps per step and batch), after a short warm-up fit that
builds the engines' kernels and cupy's.

Each measurement ends in a line with its goal and PASS or FAIL::

    python bench/gpu_bench_dtm.py                      # sampling, about 30 s
    python bench/gpu_bench_dtm.py --train-data /usr/share/datasets/fashion-mnist
    python bench/gpu_bench_dtm.py --device cpu --samples 1000 --train-data DIR --train-limit 500

Without a GPU, cupy or heatbath._cuda it prints why and exits with status 0
(unless --device cpu).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GOAL_RATE = 3.0e6  # DTM.sample, samples per second at GOAL_SAMPLES samples
GOAL_SAMPLES = 100_000
GOAL_RATIO = 1.3  # DTM.sample time / raw engine time at GOAL_SAMPLES
GOAL_EPOCH_S = 60.0  # one Fashion-MNIST epoch, 70x70, T = 8


def _skip_reason():
    from heatbath import _backend

    return _backend.gpu_unavailable_reason()


def verdict(name: str, goal: str, measured: str, ok: bool) -> str:
    return f"{name:52s} goal {goal:>16s}   measured {measured:>12s}   {'PASS' if ok else 'FAIL'}"


def measure(sizes, repeat: int, device: str = "cuda", sync=None, label: str = "") -> dict:
    """The table for each sample count in ``sizes`` (``sync`` ends every timed
    call; device='cpu' with sync=None runs the same code on the CPU). Returns
    {n: {implementation: median seconds}}."""
    from compare_dtm import ROWS, K, T, build_models, packed_sample, split_sample, step_engines
    from timing import interleaved

    sync = sync or (lambda: None)
    graph, dtm, mebm = build_models(device=device)
    print(
        f"\n== {device} dtm: digits DTM (torus 12x12, {graph.n_nodes} nodes + {graph.n_visible} clamped "
        f"inputs), "
        f"T = {T}, K = {K}, {label} (median of {repeat} interleaved runs) =="
    )
    print(
        f"{'implementation':44s} {'samples':>7s} {'ms':>8s} {'samples/s':>10s} {'updates/ns':>11s} "
        f"{'time/eng':>9s}"
    )

    def synced(f):
        def g():
            f()
            sync()

        return g

    def run_engines(es):
        for e in es:
            e.sweep(K)

    out = {}
    for n in sizes:
        upd = graph.n_nodes * n * T * K
        csr = step_engines(dtm, n, device=device, storage="csr")
        ell = step_engines(dtm, n, device=device, storage="ell")
        packed_engines = step_engines(dtm, n, device=device)
        t = interleaved(
            {
                "dtm": synced(lambda n=n: dtm.sample(n, seed=1)),
                "packed": synced(lambda n=n, pe=packed_engines: packed_sample(graph, pe, n, 1)),
                "csr": synced(lambda csr=csr: run_engines(csr)),
                "ell": synced(lambda ell=ell: run_engines(ell)),
                "mebm": synced(lambda n=n: mebm.sample(n, seed=1)),
            },
            repeat,
        )
        for key, name in ROWS:
            print(
                f"{name:44s} {n:7d} {t[key] * 1e3:8.2f} {n / t[key]:10.0f} {upd / t[key] / 1e9:11.3f} "
                f"{t[key] / t['csr']:8.2f}x"
            )
        tot, ker = split_sample(dtm, n, max(3, repeat // 2), sync=sync)
        print(
            f"  DTM.sample / engine = {t['dtm'] / t['csr']:.2f}x, hand-written packed loop "
            f"{t['packed'] / t['csr']:.2f}x; DTM.sample split: {ker * 1e3:.2f} ms in sweep calls, "
            f"{(tot - ker) * 1e3:.2f} ms around them ({(tot - ker) / tot:.0%})"
        )
        out[n] = t
        del csr, ell, packed_engines
    return out


def train_epoch(
    data: str, device: str, sync, limit=None, T: int = 8, side: int = 70, warm: int = 500
) -> float:
    """Seconds of one epoch of ``heatbath train dtm-digits --data DIR --side
    70 --T 8`` on ``device`` (the model the command builds), after a warm-up
    fit on ``warm`` images with a model of its own."""
    import numpy as np
    from heatbath.data import idx
    from heatbath.dtm import DTM, torus_graph

    t0 = time.perf_counter()
    X = idx.load_idx_dir(data, "train").X.astype(np.uint8)
    if limit is not None:
        X = X[:limit]
    px = math.isqrt(X.shape[1])
    shape = (px, px) if px * px == X.shape[1] else None
    graph = torus_graph(side, X.shape[1], image_shape=shape)
    load_s = time.perf_counter() - t0

    def model():
        return DTM(graph=graph, T=T, n_epochs=1, device=device, progress=False, seed=0)

    t0 = time.perf_counter()
    model().fit(X[:warm])
    sync()
    warm_s = time.perf_counter() - t0
    m = model()
    t0 = time.perf_counter()
    m.fit(X)
    sync()
    epoch_s = time.perf_counter() - t0
    C = m.batch_size
    batches = math.ceil(X.shape[0] / C)
    sweeps = batches * T * (m.pos_sweeps + m.warmup + m.n_records)
    print(
        f"\n== {device} dtm training: {data}, {X.shape[0]} images of {X.shape[1]} pixels, "
        f"torus {side}x{side} "
        f"({graph.n_nodes} nodes, {graph.n_edges} edges), T = {T}, batches of {C} =="
    )
    print(f"data loaded in {load_s:.1f} s; warm-up fit on {min(warm, X.shape[0])} images {warm_s:.1f} s")
    print(
        f"one epoch: {epoch_s:.2f} s ({X.shape[0] / epoch_s:,.0f} images/s; {batches} batches x {T} steps, "
        f"{sweeps:,} sweeps of {C} chains, {epoch_s / (batches * T) * 1e3:.2f} ms per step update)"
    )
    last = m.history_[-T:]
    print(
        "last epoch's mixing: "
        + ", ".join(f"step {h['step']} tau {h['tau']:.2f} cp {h['cp']:.3g}" for h in last)
    )
    return epoch_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, nargs="+", default=[1000, 10000, GOAL_SAMPLES])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--train-data", metavar="DIR", help="time one training epoch on the IDX files in DIR")
    ap.add_argument("--train-limit", type=int, default=None, help="train on at most this many images")
    ap.add_argument("--no-sample", action="store_true", help="skip the sampling table")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = ap.parse_args(argv)
    if args.device == "cuda":
        reason = _skip_reason()
        if reason is not None:
            print(f"gpu_bench_dtm: skipped: {reason}")
            return 0
        import cupy as cp

        sync = cp.cuda.Device().synchronize
        label = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    else:
        import heatbath

        sync = None
        label = f"CPU level {heatbath.cpu_level()}, {heatbath.get_num_threads()} threads"
    lines = []
    if not args.no_sample:
        t0 = time.perf_counter()
        res = measure(args.samples, args.repeat, args.device, sync, label)
        print(f"(sampling section: {time.perf_counter() - t0:.1f} s)")
        n = GOAL_SAMPLES if GOAL_SAMPLES in res else max(res)
        t = res[n]
        lines.append(
            verdict(
                f"DTM.sample, {n:,} samples: samples/s",
                f">= {GOAL_RATE:,.0f}",
                f"{n / t['dtm']:,.0f}",
                n / t["dtm"] >= GOAL_RATE,
            )
        )
        lines.append(
            verdict(
                f"DTM.sample, {n:,} samples: time / raw engine",
                f"<= {GOAL_RATIO:.2f}x",
                f"{t['dtm'] / t['csr']:.2f}x",
                t["dtm"] / t["csr"] <= GOAL_RATIO,
            )
        )
    if args.train_data:
        s = train_epoch(args.train_data, args.device, sync or (lambda: None), args.train_limit)
        what = "one epoch, 70x70, T = 8" + (f" ({args.train_limit} images)" if args.train_limit else "")
        lines.append(verdict(what, f"<= {GOAL_EPOCH_S:.0f} s", f"{s:.1f} s", s <= GOAL_EPOCH_S))
    if lines:
        print(f"\n== dtm goals ({label}) ==")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
