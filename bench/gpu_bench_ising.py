"""GPU throughput of heatbath's Gibbs samplers (run by bench/gpu_check.sh):
the multi-spin-coded 2D lattice and the sparse DTM graph, in spin updates per
nanosecond, timed with cupy events.

    python bench/gpu_bench_ising.py [--L 16384] [--chains 1000 10000 100000] [--sparse-only]

THRML (pure Python on JAX) is timed on the same GPU beside the sparse
sampler when it is importable and JAX sees the GPU.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from goals import record  # noqa: E402
from timing import cuda_median_ms  # noqa: E402


def section_lattice(L: int, sweeps: int) -> None:
    import cupy as cp
    from heatbath.ebm import IsingLattice

    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"\n== GPU Ising lattice (multi-spin coded, exact 32-bit thresholds), {name} ==")
    print(f"{'lattice':24s} {'chains':>6s} {'ms/sweep':>9s} {'updates/ns':>11s}")
    for shape, chains in (((L, L), 1), ((1024, 1024), 64), ((256, 256, 256), 1)):
        lat = IsingLattice(
            shape, beta=0.44 if len(shape) == 2 else 0.22, n_chains=chains, seed=1, device="cuda"
        )
        ms = cuda_median_ms(lambda lat=lat: lat.sweep(sweeps))
        n = lat.n_sites * chains * sweeps
        print(f"{' x '.join(map(str, shape)):24s} {chains:6d} {ms / sweeps:9.3f} {n / ms / 1e6:11.1f}")
    print("goal (issue 6): 900 updates/ns on one H100/H200 for the lattice")


def _thrml_gpu(i, j, w, colours, chains: int, sweeps: int):
    """THRML sweeps of ``chains`` chains on JAX's GPU backend (beta 1), or None."""
    try:
        import jax

        if not any(d.platform == "gpu" for d in jax.devices()):
            print("(THRML not measured: JAX sees no GPU)")
            return None
        from compare_ising import _thrml_runner
    except Exception as exc:  # pragma: no cover - optional peer
        print(f"(THRML not measured: {type(exc).__name__}: {exc})")
        return None
    return _thrml_runner(i, j, w, colours, chains, 1.0, sweeps)


def section_sparse(chains_list, sweeps: int, thrml: bool) -> None:
    import time

    import numpy as np
    from heatbath.ebm import SparseIsing, SparsePotts
    from heatbath.ebm.graphs import dtm_grid_edges

    i, j, w, c = dtm_grid_edges(side=70, seed=0)
    edges = list(zip(i.tolist(), j.tolist()))
    print(f"\n== GPU sparse DTM graph (70x70, degree 12, 4,900 nodes, 2 colours), beta 1, {sweeps} sweeps ==")
    print(f"{'sampler':22s} {'chains':>7s} {'ms/sweep':>9s} {'updates/ns':>11s} {'vs THRML':>9s}")
    for C in chains_list:
        rates = {}
        for storage in ("ell", "csr"):
            m = SparseIsing.from_edges(4900, edges, w, n_chains=C, colouring=c, seed=1, storage=storage,
                                       device="cuda", beta=np.ones(C))
            ms = cuda_median_ms(lambda m=m: m.sweep(sweeps))
            rates[storage] = 4900 * C * sweeps / ms / 1e6
        pc = SparseIsing.from_edges(4900, edges, w, n_chains=C, colouring=c, seed=1, device="cuda",
                                    beta=np.linspace(0.5, 1.5, C))
        ms = cuda_median_ms(lambda m=pc: m.sweep(sweeps))
        rates["per-chain beta"] = 4900 * C * sweeps / ms / 1e6
        t_rate = None
        if thrml and C >= 10_000:
            run = _thrml_gpu(i, j, w, c, C, sweeps)
            if run is not None:
                ts = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    run()
                    ts.append(time.perf_counter() - t0)
                t_rate = 4900 * C * sweeps / float(np.median(ts)) / 1e9
                print(f"{'THRML (JAX GPU)':22s} {C:7d} {4900 * C / t_rate / 1e6:9.3f} {t_rate:11.1f} {'1.00x':>9s}")
        for k, r in rates.items():
            vs = f"{r / t_rate:8.1f}x" if t_rate else f"{'n/a':>9s}"
            print(f"{'SparseIsing ' + k:22s} {C:7d} {4900 * C / r / 1e6:9.3f} {r:11.1f} {vs}")
        if C >= 10_000:
            record("14", f"SparseIsing DTM graph {C:,} chains (ELL), updates/ns", rates["ell"], 250.0, "/ns")
            if t_rate:
                record("14", f"SparseIsing vs THRML on the same GPU, {C:,} chains", rates["ell"] / t_rate, 10.0, "x")
    for K in (3, 8):
        C = 10_000
        m = SparsePotts.from_edges(4900, edges, w, K=K, n_chains=C, colouring=c, seed=1, device="cuda")
        ms = cuda_median_ms(lambda m=m: m.sweep(sweeps))
        r = 4900 * C * sweeps / ms / 1e6
        print(f"{'SparsePotts K=' + str(K):22s} {C:7d} {ms / sweeps:9.3f} {r:11.1f}")
        if K == 3:
            record("14", "SparsePotts K=3, 10,000 chains, updates/ns", r, 100.0, "/ns")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--L", type=int, default=16384)
    ap.add_argument("--chains", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--sparse-only", action="store_true")
    ap.add_argument("--no-thrml", action="store_true")
    args = ap.parse_args(argv)
    from heatbath import _backend

    reason = _backend.gpu_unavailable_reason()
    if reason is not None:
        print(f"gpu_bench_ising: skipped: {reason}")
        return 0
    if not args.sparse_only:
        section_lattice(args.L, args.sweeps)
    section_sparse(args.chains, args.sweeps, not args.no_thrml)
    return 0


if __name__ == "__main__":
    sys.exit(main())
