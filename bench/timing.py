"""Timing helpers shared by the bench/ scripts."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict


def interleaved(
    fns: Dict[str, Callable[[], object]], repeat: int, flush_bytes: int = 0, pause: float = 0.0
) -> Dict[str, float]:
    """Median seconds of each callable, run in alternation (after one warm-up
    call each) so that machine noise hits all of them alike. With
    ``flush_bytes`` > 0, a buffer of that size is written before every timed
    call, so that each starts from the same (cold) cache state. With ``pause``
    > 0, the machine idles that many seconds before every timed call, so that
    the worker threads one library leaves spinning after its call (XLA's,
    OpenMP's) have gone to sleep before the next one is timed."""
    import numpy as np

    flush = np.empty(flush_bytes // 8, dtype=np.float64) if flush_bytes else None
    for f in fns.values():
        f()
    ts: Dict[str, list] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            if flush is not None:
                flush.fill(0.0)
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}


def cuda_median_ms(fn: Callable[[], object], repeat: int = 10) -> float:
    """Median milliseconds of ``fn`` on the current cupy stream, timed with
    CUDA events after one warm-up call."""
    import cupy as cp

    fn()
    cp.cuda.Device().synchronize()
    ts = []
    for _ in range(repeat):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b))
    return statistics.median(ts)
