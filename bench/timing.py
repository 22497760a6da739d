"""Timing helpers shared by the bench/ scripts."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict


def interleaved(fns: Dict[str, Callable[[], object]], repeat: int) -> Dict[str, float]:
    """Median seconds of each callable, run in alternation (after one warm-up
    call each) so that machine noise hits all of them alike."""
    for f in fns.values():
        f()
    ts: Dict[str, list] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}
