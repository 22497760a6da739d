"""``heatbath demo``: draw Philox numbers and print their moments."""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import _args


def run(args: argparse.Namespace) -> int:
    import heatbath
    from heatbath import random as hr

    n = args.n
    print(f"heatbath {heatbath.__version__}: CPU level {heatbath.cpu_level()}, "
          f"{heatbath.get_num_threads()} threads, CUDA module {'built' if heatbath.cuda_built() else 'not built'}")
    out = np.empty(n, dtype=np.float32)
    out.fill(0)
    print(f"{n:,} float32 draws, seed {args.seed}")
    print(f"{'':8s} {'mean':>10s} {'variance':>10s} {'skewness':>10s} {'ex.kurt':>10s} {'draws/ns':>9s}")
    exact = {"uniform": (0.5, 1 / 12, 0.0, -1.2), "normal": (0.0, 1.0, 0.0, 0.0)}
    for name, fn in (("uniform", hr.uniform), ("normal", hr.normal)):
        fn(None, args.seed, out=out)  # untimed first call: starts the thread pool
        t0 = time.perf_counter()
        fn(None, args.seed, out=out)
        dt = time.perf_counter() - t0
        x = out.astype(np.float64)
        m, v = x.mean(), x.var()
        d = x - m
        skew = (d**3).mean() / v**1.5
        kurt = (d**4).mean() / v**2 - 3
        print(f"{name:8s} {m:10.6f} {v:10.6f} {skew:10.6f} {kurt:10.6f} {n / dt / 1e9:9.2f}")
        e = exact[name]
        print(f"{'  exact':8s} {e[0]:10.6f} {e[1]:10.6f} {e[2]:10.6f} {e[3]:10.6f}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="draw Philox numbers and print their moments")
    p.add_argument("-n", type=_args.positive_int, default=10_000_000, help="number of draws (default 10^7)")
    _args.add_seed(p, 2015, "the draws")
    p.set_defaults(fn=run)
