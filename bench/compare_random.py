"""Random numbers: heatbath's Philox uniform/normal float32 against numpy's
Generator (PCG64 and Philox), 10^7 values into a preallocated ``out``, with
one and with two heatbath threads (numpy's generators are single-threaded)."""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heatbath  # noqa: E402
from heatbath import random as hr  # noqa: E402
from timing import interleaved  # noqa: E402

N = 10_000_000


def section_random(repeat: int) -> None:
    n = N
    out = np.empty(n, dtype=np.float32)
    out.fill(0)
    pcg = np.random.Generator(np.random.PCG64(1))
    phx = np.random.Generator(np.random.Philox(1))
    print(f"\n== random: {n:,} float32 values into a preallocated out (median of {repeat} interleaved runs) ==")
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
