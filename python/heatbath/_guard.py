"""Guards shared by the samplers: a per-object lock, so that one sampler used
from several threads runs its calls one after another (the result is that of
some sequential order of the calls), and bounded integer arguments."""

from __future__ import annotations

import functools
import operator
import threading
from typing import Any, Callable, Optional, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

# Counts of steps (sweeps, iterations) handed to the kernels: int64, with room
# for the counters they are added to.
MAX_STEPS = 2**62


class Guarded:
    """Mixin: ``self._lock``, a re-entrant lock created on first use; copies
    and unpickled objects get their own."""

    @property
    def _lock(self) -> threading.RLock:
        lk = self.__dict__.get("_hb_lock")
        if lk is None:
            lk = self.__dict__.setdefault("_hb_lock", threading.RLock())
        return lk

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_hb_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def locked(method: F) -> F:
    """Run ``method`` holding the object's lock (see :class:`Guarded`)."""

    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def as_int(v: Any, name: str, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """An int in [minimum, maximum]: TypeError for non-integers (bool
    included), ValueError naming ``name`` outside the range."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an int, got bool")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an int, got {type(v).__name__}") from None
    if i < minimum:
        raise ValueError(f"'{name}': must be >= {minimum}, got {i}")
    if maximum is not None and i > maximum:
        raise ValueError(f"'{name}': must be <= {maximum}, got {i}")
    return i
