"""GPU sampling speed of the digits DTM (run by bench/gpu_check.sh): the
measurement of ``bench/compare_dtm.py`` with device='cuda' -- DTM.sample in
samples per second and its Gibbs rate next to the raw CUDA engine on the same
graph and chain count, the same loop on packed rows, and the MEBM at equal
total sweeps. Models are fitted for one epoch on the CPU and moved to the GPU
through a checkpoint. Every timed call ends with a device synchronize
(DTM.sample returns host arrays anyway); medians of interleaved runs.

    python bench/gpu_bench_dtm.py [--samples 1000 10000] [--repeat 7]

Without a GPU, cupy or heatbath._cuda it prints why and exits with status 0.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _skip_reason():
    from heatbath import _backend

    return _backend.gpu_unavailable_reason()


def measure(sizes, repeat: int, device: str = "cuda", sync=None, label: str = "") -> None:
    """The table for each sample count in ``sizes`` (``sync`` ends every timed
    call; device='cpu' with sync=None runs the same code on the CPU)."""
    from compare_dtm import ROWS, K, T, build_models, packed_sample, split_sample, step_engines
    from timing import interleaved

    sync = sync or (lambda: None)
    graph, dtm, mebm = build_models(device=device)
    print(
        f"\n== GPU dtm: digits DTM (torus 12x12, {graph.n_nodes} nodes + {graph.n_visible} clamped inputs), "
        f"T = {T}, K = {K}, {label} (median of {repeat} interleaved runs) =="
    )
    print(f"{'implementation':44s} {'samples':>7s} {'ms':>8s} {'samples/s':>10s} {'updates/ns':>11s} "
          f"{'time/eng':>9s}")

    def synced(f):
        def g():
            f()
            sync()
        return g

    def run_engines(es):
        for e in es:
            e.sweep(K)

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
            f"  DTM.sample / engine = {t['dtm'] / t['csr']:.2f}x (acceptance: within 1.5x), hand-written packed "
            f"loop {t['packed'] / t['csr']:.2f}x; DTM.sample split: {ker * 1e3:.2f} ms in sweep calls, "
            f"{(tot - ker) * 1e3:.2f} ms around them ({(tot - ker) / tot:.0%})"
        )


def section_dtm(sizes, repeat: int) -> None:
    import cupy as cp

    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    measure(sizes, repeat, "cuda", cp.cuda.Device().synchronize, name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    reason = _skip_reason()
    if reason is not None:
        print(f"gpu_bench_dtm: skipped: {reason}")
        return 0
    section_dtm(args.samples, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
