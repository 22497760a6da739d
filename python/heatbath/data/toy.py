"""Generated toy data sets of the 2015 diffusion paper: the 2-D Swiss roll
and binary heartbeat sequences. Seeded; nothing is downloaded."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

# Population moments of the noiseless roll (t uniform on [1.5 pi, 4.5 pi],
# point (t cos t, t sin t)), used to rescale every sample identically to unit
# variance per coordinate (the paper's convention), computed in closed form
# below by high-order quadrature.
_T0, _T1 = 1.5 * np.pi, 4.5 * np.pi


def _roll_moments() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(400)
    t = 0.5 * (_T1 - _T0) * x + 0.5 * (_T1 + _T0)
    w = w / w.sum()
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    mean = (w[:, None] * pts).sum(0)
    var = (w[:, None] * (pts - mean) ** 2).sum(0)
    return mean, np.sqrt(var)


_ROLL_MEAN, _ROLL_STD = _roll_moments()


class Split(NamedTuple):
    train: np.ndarray
    test: np.ndarray


def swiss_roll(n: int, seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """The 2-D Swiss roll: t ~ U[1.5 pi, 4.5 pi], x = (t cos t, t sin t) plus
    isotropic Gaussian noise of standard deviation ``noise`` (in the roll's
    raw units), then shifted and scaled to zero mean and unit variance per
    coordinate with the noiseless roll's exact population moments.

    Returns
    -------
    (n, 2) float64 array
    """
    n = _count(n, "n")
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise TypeError(f"'noise': expected a number, got {type(noise).__name__}") from None
    if not 0 <= noise < np.inf:
        raise ValueError(f"'noise': must be finite and >= 0, got {noise}")
    g = _rng(seed)
    t = g.uniform(_T0, _T1, size=n)
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    if noise:
        x = x + noise * g.standard_normal(x.shape)
    return (x - _ROLL_MEAN) / _ROLL_STD


def heartbeat(n: int, seed: int = 0, length: int = 20, period: int = 5) -> np.ndarray:
    """Binary heartbeat sequences: a 1 every ``period``-th bin, 0 elsewhere,
    with a uniformly random phase (the paper's length-20, period-5 set). The
    true distribution has entropy log2(period) bits per sequence.

    Returns
    -------
    (n, length) uint8 array of 0/1
    """
    n = _count(n, "n")
    length = _count(length, "length", minimum=1)
    period = _count(period, "period", minimum=1)
    if period > length:
        raise ValueError(f"'period': must not exceed length {length}, got {period}")
    if n * length > _MAX_ELEMENTS:
        raise ValueError(f"'length': {n} sequences of {length} bins exceed {_MAX_ELEMENTS} values")
    phase = _rng(seed).integers(0, period, size=n)
    idx = np.arange(length)
    return ((idx[None, :] + phase[:, None]) % period == 0).astype(np.uint8)


def split(x: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A fixed, seeded train/held-out split along the first axis."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"'test_fraction': must lie in (0, 1), got {test_fraction}")
    perm = _rng(seed).permutation(len(x))
    k = int(round(len(x) * test_fraction))
    return Split(x[perm[k:]], x[perm[:k]])


def load(name: str, n: Optional[int] = None, seed: int = 0, noise: float = 0.0) -> Split:
    """A built-in toy set by name ('swissroll' or 'heartbeat'), split into
    train and held-out parts (held-out data come from a different seed).
    ``noise``: the Swiss roll's noise (see :func:`swiss_roll`)."""
    if name == "swissroll":
        n = 20000 if n is None else n
        return Split(swiss_roll(n, seed=seed, noise=noise),
                     swiss_roll(max(n // 4, 1), seed=seed + 1_000_003, noise=noise))
    if name == "heartbeat":
        n = 20000 if n is None else n
        return Split(heartbeat(n, seed=seed), heartbeat(max(n // 4, 1), seed=seed + 1_000_003))
    raise ValueError(f"'name': unknown data set {name!r}; choose 'swissroll' or 'heartbeat'")


# Sizes beyond any memory: a clear error naming the argument rather than an
# allocation failure (or an empty array from a wrapped size).
_MAX_ELEMENTS = 2**40


def _count(v, name: str, minimum: int = 0) -> int:
    import operator

    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None
    if v < minimum:
        raise ValueError(f"'{name}': must be >= {minimum}, got {v}")
    if v > _MAX_ELEMENTS:
        raise ValueError(f"'{name}': must be <= {_MAX_ELEMENTS}, got {v}")
    return v


def _rng(seed: Any) -> np.random.Generator:
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"'seed': expected an int >= 0 or a numpy Generator ({exc})") from None
