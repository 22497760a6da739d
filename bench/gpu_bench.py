"""GPU throughput of heatbath's CUDA kernels next to cupy's generators and
the device copy bandwidth, in one process run (run by bench/gpu_check.sh).

    python bench/gpu_bench.py [--n 100000000]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import cuda_median_ms  # noqa: E402


def section_random(n: int) -> None:
    import cupy as cp
    from heatbath import random as hr

    out = cp.empty(n, dtype=cp.float32)
    src = cp.zeros(n, dtype=cp.float32)
    rs = cp.random.default_rng(1)  # cupy's Generator (XORWOW via cuRAND kernels)
    rows = {
        "copy (read+write)": cuda_median_ms(lambda: cp.copyto(out, src)),
        "heatbath uniform": cuda_median_ms(lambda: hr.uniform(None, 7, out=out)),
        "heatbath normal": cuda_median_ms(lambda: hr.normal(None, 7, out=out)),
        "cupy uniform": cuda_median_ms(lambda: rs.random(n, dtype=cp.float32, out=out)),
        "cupy normal": cuda_median_ms(lambda: rs.standard_normal(n, dtype=cp.float32, out=out)),
    }
    print(f"\n== GPU random numbers: {n:,} float32 values, {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()} ==")
    for k, ms in rows.items():
        bytes_moved = (8 if k.startswith("copy") else 4) * n
        print(f"{k:20s} {ms:8.3f} ms  {n / ms / 1e6:8.1f} values/ns  {bytes_moved / ms / 1e6:8.1f} GB/s")
    print(f"uniform: cupy / heatbath = {rows['cupy uniform'] / rows['heatbath uniform']:.2f}x; "
          f"normal: {rows['cupy normal'] / rows['heatbath normal']:.2f}x")
    print(f"heatbath uniform write bandwidth vs copy bandwidth: "
          f"{(4 * n / rows['heatbath uniform']) / (8 * n / rows['copy (read+write)']):.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000_000)
    args = ap.parse_args(argv)
    from heatbath import _backend

    reason = _backend.gpu_unavailable_reason()
    if reason is not None:
        print(f"gpu_bench: skipped: {reason}")
        return 0
    section_random(args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
