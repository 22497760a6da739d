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

# Arrays of more values than this are refused before anything is allocated: no
# memory holds them, and numpy's own error would not name the argument.
MAX_VALUES = 2**40


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


def check_values(count: int, names: Any, what: str) -> None:
    """ValueError naming the argument(s) ``names`` (a str or a tuple of them)
    when ``what`` would hold more than :data:`MAX_VALUES` values."""
    if count > MAX_VALUES:
        quoted = ", ".join(f"'{n}'" for n in ((names,) if isinstance(names, str) else names))
        raise ValueError(f"{quoted}: {what} would hold {count} values, more than 2**40")


def as_float(v: Any, name: str) -> float:
    """A real number as a Python float: TypeError naming ``name`` for
    anything else (strings, None, sequences, complex numbers)."""
    if isinstance(v, (str, bytes, complex, np.complexfloating)) or v is None:
        raise TypeError(f"'{name}': expected a real number, got {type(v).__name__}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected a real number, got {type(v).__name__}") from None


def as_float_array(v: Any, name: str) -> np.ndarray:
    """A float64 array: TypeError naming ``name`` unless the values are real
    numbers."""
    if isinstance(v, (str, bytes)) or v is None:
        raise TypeError(f"'{name}': expected real numbers, got {type(v).__name__}")
    try:
        a = np.asarray(v)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected real numbers, got {type(v).__name__}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def as_mask(m: Any, name: str, xp: Any = np) -> Any:
    """A boolean mask from bools, or from numbers that are exactly 0 or 1;
    TypeError for anything else (strings, objects), ValueError for other
    numbers (NaN included) rather than their truthiness."""
    host = m.get() if type(m).__module__.split(".")[0] == "cupy" else m
    try:
        a = np.asarray(host)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected a boolean mask, got {type(m).__name__}") from None
    if a.dtype == np.bool_:
        return xp.asarray(a)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"'{name}': expected a boolean mask (or 0/1 values), got dtype {a.dtype}")
    if not np.all((a == 0) | (a == 1)):
        raise ValueError(f"'{name}': a mask holds 0/1 (or booleans) only")
    return xp.asarray(a.astype(bool))
