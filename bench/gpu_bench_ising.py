"""GPU throughput of heatbath's Gibbs samplers (run by bench/gpu_check.sh):
the multi-spin-coded 2D lattice and the sparse DTM graph, in spin updates per
nanosecond, timed with cupy events.

    python bench/gpu_bench_ising.py [--L 16384] [--chains 1000]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


def section_sparse(chains: int, sweeps: int) -> None:
    import numpy as np
    from heatbath.ebm import SparseIsing
    from heatbath.ebm.graphs import dtm_grid_edges

    i, j, w, c = dtm_grid_edges(side=70, seed=0)
    print("\n== GPU sparse DTM graph (70x70, degree 12, 4,900 nodes, 2 colours) ==")
    print(f"{'storage':8s} {'chains':>7s} {'ms/sweep':>9s} {'updates/ns':>11s}")
    for storage in ("ell", "csr"):
        for C in sorted({chains, 10 * chains}):
            m = SparseIsing.from_edges(
                4900,
                list(zip(i.tolist(), j.tolist())),
                w,
                n_chains=C,
                colouring=c,
                seed=1,
                storage=storage,
                device="cuda",
                beta=np.ones(C),
            )
            ms = cuda_median_ms(lambda m=m: m.sweep(sweeps))
            print(f"{storage:8s} {C:7d} {ms / sweeps:9.3f} {4900 * C * sweeps / ms / 1e6:11.1f}")
    print("goal (issue 6): 200 updates/ns on one H100/H200 for the sparse graph")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--L", type=int, default=16384)
    ap.add_argument("--chains", type=int, default=1000)
    ap.add_argument("--sweeps", type=int, default=10)
    args = ap.parse_args(argv)
    from heatbath import _backend

    reason = _backend.gpu_unavailable_reason()
    if reason is not None:
        print(f"gpu_bench_ising: skipped: {reason}")
        return 0
    section_lattice(args.L, args.sweeps)
    section_sparse(args.chains, args.sweeps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
