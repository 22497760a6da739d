"""Side-by-side throughput of heatbath and its peers, in one process run.

    python bench/compare.py [--n 10000000] [--repeat 15]

Sections: random numbers (heatbath's Philox uniform/normal float32 against
numpy's Generator with PCG64 and Philox, 10^7 values into a preallocated
``out``), with one and with two threads. Each timing is the median of
``--repeat`` interleaved runs; ratios are peer time / heatbath time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import heatbath
from heatbath import random as hr


def median_time(fn, repeat: int) -> float:
    fn()  # warm up: page faults, thread pool
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def interleaved(fns: dict, repeat: int) -> dict:
    """Median seconds of each callable, run in alternation so that machine
    noise hits all of them alike."""
    for f in fns.values():
        f()
    ts = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}


def section_random(n: int, repeat: int) -> None:
    out = np.empty(n, dtype=np.float32)
    out.fill(0)
    pcg = np.random.Generator(np.random.PCG64(1))
    phx = np.random.Generator(np.random.Philox(1))
    print(f"\n== random numbers: {n:,} float32 values into a preallocated out "
          f"(median of {repeat}; heatbath CPU level {heatbath.cpu_level()}) ==")
    print(f"{'draw':8s} {'threads':>7s} {'heatbath ns/val':>15s} {'PCG64 ns/val':>13s} {'Philox ns/val':>14s} "
          f"{'vs PCG64':>9s} {'vs Philox':>9s}")
    for kind in ("uniform", "normal"):
        if kind == "uniform":
            peers = {"pcg": lambda: pcg.random(dtype=np.float32, out=out),
                     "philox": lambda: phx.random(dtype=np.float32, out=out)}
            ours = lambda: hr.uniform(None, 7, out=out)  # noqa: E731
        else:
            peers = {"pcg": lambda: pcg.standard_normal(dtype=np.float32, out=out),
                     "philox": lambda: phx.standard_normal(dtype=np.float32, out=out)}
            ours = lambda: hr.normal(None, 7, out=out)  # noqa: E731
        for threads in (1, 2):
            with heatbath.threads(threads):
                t = interleaved({"hb": ours, **peers}, repeat)
            ns = {k: v / n * 1e9 for k, v in t.items()}
            print(f"{kind:8s} {threads:7d} {ns['hb']:15.3f} {ns['pcg']:13.3f} {ns['philox']:14.3f} "
                  f"{t['pcg'] / t['hb']:8.2f}x {t['philox'] / t['hb']:8.2f}x")


SECTIONS = {"random": section_random}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    args = ap.parse_args(argv)
    print(f"heatbath {heatbath.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, CPU levels {heatbath.cpu_levels()}")
    for name in args.only or list(SECTIONS):
        SECTIONS[name](args.n, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
