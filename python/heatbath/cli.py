"""The ``heatbath`` command."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import heatbath
    from heatbath import random as hr

    n = args.n
    print(f"heatbath {heatbath.__version__}: CPU level {heatbath.cpu_level()}, "
          f"{heatbath.get_num_threads()} threads, CUDA module {'built' if heatbath.cuda_built() else 'not built'}")
    out = np.empty(n, dtype=np.float32)
    rows = []
    for name, fn, ref in (
        ("uniform", hr.uniform, (0.5, 1 / 12, 0.0, -1.2)),
        ("normal", hr.normal, (0.0, 1.0, 0.0, 0.0)),
    ):
        t0 = time.perf_counter()
        fn(None, args.seed, out=out)
        dt = time.perf_counter() - t0
        x = out.astype(np.float64)
        m = x.mean()
        v = x.var()
        d = x - m
        skew = (d**3).mean() / v**1.5
        kurt = (d**4).mean() / v**2 - 3
        rows.append((name, m, v, skew, kurt, ref, n / dt / 1e9))
    print(f"{n:,} float32 draws, seed {args.seed}")
    print(f"{'':8s} {'mean':>10s} {'variance':>10s} {'skewness':>10s} {'ex.kurt':>10s} {'draws/ns':>9s}")
    for name, m, v, s, k, ref, rate in rows:
        print(f"{name:8s} {m:10.6f} {v:10.6f} {s:10.6f} {k:10.6f} {rate:9.2f}")
        print(f"{'  exact':8s} {ref[0]:10.6f} {ref[1]:10.6f} {ref[2]:10.6f} {ref[3]:10.6f}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import heatbath

    print(f"heatbath {heatbath.__version__}")
    print(f"CPU levels available: {', '.join(heatbath.cpu_levels())}; in use: {heatbath.cpu_level()}")
    print(f"OpenMP threads: {heatbath.get_num_threads()}")
    print(f"CUDA module built: {heatbath.cuda_built()}; usable GPU: {heatbath.has_cuda()}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="heatbath", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="draw Philox numbers and print their moments")
    p.add_argument("-n", type=int, default=10_000_000, help="number of draws (default 10^7)")
    p.add_argument("--seed", type=int, default=2015)
    p.set_defaults(fn=_demo)
    p = sub.add_parser("info", help="what this installation was built with")
    p.set_defaults(fn=_info)
    args = parser.parse_args(argv)
    if getattr(args, "n", 1) < 1:
        parser.error("-n must be >= 1")
    return int(args.fn(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
