"""The bit-flip forward process of a DTM.

Over a step of length ``dt`` at rate ``lambda`` each bit is, independently,
replaced by a fair coin with probability ``1 - exp(-lambda dt)`` (so it flips
with half that probability). Composed over steps, bit i of ``x^t`` equals bit
i of ``x^0`` with probability ``1/2 + 1/2 exp(-lambda t)`` where ``t`` is the
cumulative time. In spin form (s = 2x - 1) one step is the Boltzmann factor
``q(s' | s) ~ exp(w s s')`` with the forward coupling
``w = -1/2 ln tanh(lambda dt / 2)``, which a reverse step adds, fixed,
between its input x^t and its output x^{t-1}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend
from .. import random as hr
from .._guard import as_float
from ..ebm.sparse import _as_int

__all__ = ["BitFlipForward", "forward_coupling", "time_grid"]

# At most this many steps (each a model of its own in a DTM).
MAX_STEPS = 2**20


def time_grid(T: int, kind: str = "log", t_end: float = 3.0, offset: float = 0.15) -> np.ndarray:
    """Cumulative times ``t_0 = 0 < t_1 < ... < t_T = t_end`` (float64).

    ``"linear"``: equal steps. ``"log"``: geometric spacing,
    ``t_k = t_end (geomspace(offset, 1 + offset, T + 1)_k - offset)``: short
    first steps (where the data are least noisy) and longer later ones;
    ``offset`` > 0 sets how strongly (smaller: more uneven).
    """
    T = _as_int(T, "T", 1, MAX_STEPS)
    t_end = as_float(t_end, "t_end")
    if not (np.isfinite(t_end) and t_end > 0):
        raise ValueError(f"'t_end': must be a positive number, got {t_end}")
    if kind == "linear":
        t = np.linspace(0.0, t_end, T + 1)
    elif kind == "log":
        offset = as_float(offset, "offset")
        if not (np.isfinite(offset) and offset > 0):
            raise ValueError(f"'offset': must be a positive number, got {offset}")
        t = (np.geomspace(offset, 1.0 + offset, T + 1) - offset) * t_end
        t[0], t[-1] = 0.0, t_end
    else:
        raise ValueError(f"'kind': expected 'linear' or 'log', got {kind!r}")
    return t


def forward_coupling(rate_dt: Any) -> np.ndarray:
    """``w = -1/2 ln tanh(lambda dt / 2)``: the coupling whose Boltzmann factor
    ``exp(w s s') / (2 cosh w)`` is the one-step kernel ``q(s' | s)``."""
    x = np.asarray(rate_dt, dtype=np.float64)
    if np.any(~np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("'rate_dt': lambda * dt must be positive and finite")
    return -0.5 * np.log(np.tanh(0.5 * x))


class BitFlipForward:
    """Bit-flip noising over a time grid.

    Parameters
    ----------
    T : int
        Number of steps.
    rate : float
        lambda, the rate at which bits are replaced by coins.
    t_end : float
        Total time; ``exp(-rate * t_end)`` is the correlation left with the data
        at step T (the sampler starts from uniform bits).
    schedule : {"log", "linear"}
    offset : float
        Shape of the log grid (see :func:`time_grid`).

    Attributes
    ----------
    times : ndarray (T + 1,), float64
    flip_prob : ndarray (T,)
        Probability that step t (index t - 1) flips a bit: ``(1 - exp(-rate dt)) / 2``.
    coupling : ndarray (T,)
        Forward coupling of step t (index t - 1).
    """

    def __init__(self, T: int, rate: float = 1.0, t_end: float = 3.0, schedule: str = "log",
                 offset: float = 0.15) -> None:
        rate = as_float(rate, "rate")
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"'rate': must be a positive number, got {rate}")
        self.times = time_grid(T, schedule, t_end, offset)
        self.T = self.times.size - 1
        self.rate = rate
        self.schedule = schedule
        self.offset = float(offset)
        dt = np.diff(self.times)
        self.flip_prob = 0.5 * (1.0 - np.exp(-rate * dt))
        self.coupling = forward_coupling(rate * dt)

    def _check_t(self, t: Any, lo: int) -> int:
        """``t`` as an int in [lo, T] (TypeError or ValueError naming 't')."""
        t = _as_int(t, "t", lo)
        if t > self.T:
            raise ValueError(f"'t': must lie in [{lo}, {self.T}], got {t}")
        return t

    def agreement(self, t: int) -> float:
        """P(x^t_i = x^0_i) = 1/2 + 1/2 exp(-rate * times[t])."""
        t = self._check_t(t, 0)
        return 0.5 + 0.5 * float(np.exp(-self.rate * self.times[t]))

    def _flip(self, x: Any, p: float, seed: Any, offset: int, stream: int) -> Any:
        u = hr.uniform(x.shape, seed, offset=offset, stream=stream, dtype="float64",
                       device="cuda" if _backend.is_cupy(x) else None)
        return x.astype(np.uint8) ^ (u < p).astype(np.uint8)

    def noise(self, x0: Any, t: int, seed: Any, offset: int = 0, stream: int = 0) -> np.ndarray:
        """Draw x^t given x^0 (0/1 array of any shape) in one go: each bit flips
        with probability ``(1 - exp(-rate * times[t])) / 2``. Returns uint8.
        The draw is element ``offset + k`` of Philox stream ``stream``. A cupy
        array is noised on its GPU (the same bits)."""
        t = self._check_t(t, 0)
        x = _bits(x0, "x0")
        if t == 0:
            return x.astype(np.uint8)
        p = 0.5 * (1.0 - np.exp(-self.rate * self.times[t]))
        return self._flip(x, p, seed, offset, stream)

    def step(self, x_prev: Any, t: int, seed: Any, offset: int = 0, stream: int = 0) -> np.ndarray:
        """Draw x^t given x^{t-1} (one step, t in 1..T). Returns uint8."""
        t = self._check_t(t, 1)
        x = _bits(x_prev, "x_prev")
        return self._flip(x, float(self.flip_prob[t - 1]), seed, offset, stream)

    def config(self) -> dict:
        return {"T": self.T, "rate": self.rate, "t_end": float(self.times[-1]), "schedule": self.schedule,
                "offset": self.offset}


def _bits(x: Any, name: str) -> Any:
    """A 0/1 array (numpy or cupy, kept where it is): bools, or numbers that
    are exactly 0 or 1 (NaN and other values raise ValueError naming ``name``)."""
    xp = _backend.array_namespace(x)
    try:
        a = xp.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected an array of 0/1 values, got {type(x).__name__}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected an array of 0/1 values, got dtype {a.dtype}")
    if a.dtype.kind != "b" and not bool(((a == 0) | (a == 1)).all()):
        raise ValueError(f"'{name}': values must be 0 or 1")
    return a
