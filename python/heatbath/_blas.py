"""BLAS threads inside heatbath's own loops.

heatbath's small networks (diffusion models) and moment sums (DTM training)
call BLAS through numpy on small matrices, between kernels of its own that
run on OpenMP threads. A threaded BLAS gains nothing on matrices that small,
and its threads, which keep spinning for a while after each call, take the
cores away from the OpenMP kernels and from any other process: on two busy
cores, training with a threaded BLAS ran several times slower than with one
BLAS thread (and with several BLAS threads, a shard of a sampling run of
:mod:`heatbath.distributed` need not equal those rows of the one-process run
to the bit; with one it does). heatbath therefore runs BLAS on one thread inside its training,
evaluation and sampling loops (:func:`blas_threads`) when their matrices are
small; a loop whose products are large (at least :data:`LARGE_WORK`
multiply-adds each, as in the Gibbs sweeps of a 784 x 500 RBM over 1,000
chains) runs BLAS on as many threads as heatbath's own kernels
(:func:`heatbath.get_num_threads`), unless

- the environment sets a BLAS thread count (``OPENBLAS_NUM_THREADS``,
  ``MKL_NUM_THREADS``, ``BLIS_NUM_THREADS``, ``VECLIB_MAXIMUM_THREADS``):
  then that count is used;
- :func:`set_blas_threads` chose another number, or ``None`` (leave BLAS
  alone).

Outside those loops BLAS keeps its own setting. The limit uses threadpoolctl
(a dependency of heatbath); without it, nothing is changed.
"""

from __future__ import annotations

import contextlib
import operator
import os
import threading
from typing import Any, Iterator, Optional

_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
# As heatbath.set_num_threads: a C int for BLAS, and far more threads than cores cost only memory.
MAX_BLAS_THREADS = 1024
_UNSET = object()
_setting: Any = _UNSET  # _UNSET: 1 thread unless the environment says otherwise
_controller: Any = None
_lock = threading.Lock()
_depth = threading.local()


def set_blas_threads(n: Optional[int]) -> None:
    """BLAS threads inside heatbath's training, evaluation and sampling
    loops: ``n`` >= 1, or ``None`` to leave BLAS as it is configured. The
    default is 1 (unless a BLAS thread count is set in the environment),
    the fast setting for the small matrices of those loops; at most 1024."""
    global _setting
    if n is not None:
        if isinstance(n, bool) or type(n).__name__ == "bool_":
            raise TypeError("'n': expected an int or None, got bool")
        try:
            n = operator.index(n)
        except TypeError:
            raise TypeError(f"'n': expected an int or None, got {type(n).__name__}") from None
        if not 1 <= n <= MAX_BLAS_THREADS:
            raise ValueError(f"'n': must lie in [1, {MAX_BLAS_THREADS}] or be None, got {n}")
    _setting = n


# multiply-adds per BLAS call from which heatbath's loops use threaded BLAS by default
LARGE_WORK = 1 << 24


def get_blas_threads(work: int = 0) -> Optional[int]:
    """The BLAS thread count heatbath's loops use (None: BLAS as configured),
    for products of ``work`` multiply-adds each (by default: small ones)."""
    if _setting is not _UNSET:
        return _setting
    for var in _ENV:
        text = os.environ.get(var)
        if text:
            try:
                return max(1, int(text))  # also when set after BLAS started (Dask workers do that)
            except ValueError:
                return None
    if work >= LARGE_WORK:
        from ._backend import get_num_threads

        return get_num_threads()
    return 1


def _get_controller() -> Any:
    global _controller
    if _controller is None:
        with _lock:
            if _controller is None:
                try:
                    from threadpoolctl import ThreadpoolController
                except ImportError:
                    _controller = False
                else:
                    _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def blas_threads(work: int = 0) -> Iterator[None]:
    """Context manager: BLAS on :func:`get_blas_threads` threads (for
    products of ``work`` multiply-adds) inside the block; a nested block
    keeps the outer block's count and costs nothing."""
    n = get_blas_threads(work)
    depth = getattr(_depth, "n", 0)
    if n is None or depth > 0:
        yield
        return
    ctl = _get_controller()
    if not ctl:
        yield
        return
    _depth.n = depth + 1
    try:
        with ctl.limit(limits=n, user_api="blas"):
            yield
    finally:
        _depth.n = depth


def in_blas_threads(fn: Any = None, *, work: Any = None) -> Any:
    """Decorator: the function runs inside :func:`blas_threads`.
    ``@in_blas_threads(work=f)``: ``f(*args, **kwargs)`` estimates the
    multiply-adds of each of its products (0 where it cannot tell)."""
    import functools

    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            w = 0
            if work is not None:
                try:
                    w = int(work(*args, **kwargs))
                except Exception:  # the function itself reports bad arguments
                    w = 0
            with blas_threads(w):
                return fn(*args, **kwargs)

        return wrapper

    return wrap(fn) if fn is not None else wrap
