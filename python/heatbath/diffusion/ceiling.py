"""The data's side of the bound K: the best K that any model can reach.

For Gaussian diffusion the bound K of :meth:`GaussianDPM.bound` is, averaged
over the data, an evidence lower bound on the model's log-density of
``X^1 = sqrt(1 - beta_1) X^0 + sqrt(beta_1) Z``, the data after the first
forward step::

    E K = E log p(X^1) - E KL(q(x^{2:T} | x^1) || p(x^{2:T} | x^1)) + c
        <= E log p(X^1) + c <= -H(X^1) + c        (Gibbs' inequality)

whatever the model. ``c = abar_T (E|X^0|^2 - d) / 2`` nats comes from the
paper's use of the entropy ``H_p(X^T)`` in place of the cross-entropy
``E_q[-log p(x^T)]``; it vanishes for data of zero mean and unit variance
and is below 1e-6 bits for the data sets here. So the ceiling of K is
``-H(X^1) + c``, reached by the model whose reverse kernels are the exact
reverse conditionals of the forward process (up to ``KL(q(x^T) || p(x^T))``).
It depends on beta_1: for data on a curve (the noiseless Swiss roll) it grows
without limit as beta_1 -> 0, so K on such data measures the chosen
resolution as much as the model.

For binomial diffusion the bound includes the last step ``p(x^0 | x^1)`` and
the ceiling is ``-H(X^0)``, the data's own entropy.

Data models (distributions with a computable entropy):

* :class:`GaussianData` -- ``N(mean, cov)``; closed form.
* :class:`CurveData` -- a point ``c(t)``, ``t`` uniform on an interval, plus
  independent Gaussian noise per coordinate; the entropy by nested
  quadrature (see :meth:`CurveData.entropy`), with its numerical error.
* :class:`DiscreteData` -- a distribution of known entropy (binary data).
* :func:`swiss_roll_data` -- the distribution of :func:`heatbath.data.swiss_roll`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Tuple

import numpy as np

__all__ = [
    "Ceiling",
    "CurveData",
    "DiscreteData",
    "Entropy",
    "GaussianData",
    "step1_ceiling",
    "swiss_roll_data",
]

LOG2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)


class Entropy(NamedTuple):
    """A differential entropy in nats and the size of its numerical error
    (0 for closed forms)."""

    nats: float
    error: float


class Ceiling(NamedTuple):
    """The largest K (bits per sample) any model can reach on the data,
    ``error`` its numerical error (bits), ``method`` how it was computed."""

    bits: float
    error: float
    method: str


def _beta(beta: Any, name: str = "step1_beta") -> float:
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"'{name}': expected a number, got {type(beta).__name__}")
    b = float(beta)
    if not 0.0 < b < 1.0:
        raise ValueError(f"'{name}': must lie in (0, 1), got {beta!r}")
    return b


class GaussianData:
    """``X ~ N(mean, cov)``.

    Parameters
    ----------
    mean : array_like (d,)
    cov : array_like (d, d) symmetric positive definite, or (d,) variances
    """

    def __init__(self, mean: Any, cov: Any) -> None:
        m = np.asarray(mean, dtype=np.float64).reshape(-1)
        c = np.asarray(cov, dtype=np.float64)
        if c.ndim == 1:
            c = np.diag(c)
        if c.shape != (m.size, m.size):
            raise ValueError(f"'cov': expected shape ({m.size}, {m.size}) or ({m.size},), got {c.shape}")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(c))):
            raise ValueError("'mean', 'cov': must be finite")
        if not np.allclose(c, c.T, rtol=1e-12, atol=0.0):
            raise ValueError("'cov': must be symmetric")
        if np.linalg.eigvalsh(c).min() <= 0:
            raise ValueError("'cov': must be positive definite")
        self.mean, self.cov = m, c

    @property
    def dim(self) -> int:
        return self.mean.size

    def after_step(self, beta: float) -> "GaussianData":
        """The distribution of ``sqrt(1 - beta) X + sqrt(beta) Z``."""
        b = _beta(beta, "beta")
        return GaussianData(math.sqrt(1.0 - b) * self.mean, (1.0 - b) * self.cov + b * np.eye(self.dim))

    def entropy(self) -> Entropy:
        """``1/2 log det(2 pi e cov)``, exact."""
        _, logdet = np.linalg.slogdet(self.cov)
        return Entropy(0.5 * (self.dim * (1.0 + _LOG_2PI) + logdet), 0.0)

    def second_moment(self) -> float:
        """``E |X|^2``."""
        return float(self.mean @ self.mean + np.trace(self.cov))


class CurveData:
    """``X = scale * c(T) + N(0, diag(noise_var))`` with ``T`` uniform on
    ``t_range``.

    Parameters
    ----------
    curve : callable
        ``curve(t)``: float64 (m,) -> (m, d), smooth.
    t_range : (float, float)
    noise_var : array_like (d,) or float
        Variances of the independent Gaussian noise per coordinate (>= 0; a
        zero makes the entropy -inf).
    scale : float
        Multiplies the curve.
    """

    def __init__(
        self,
        curve: Callable[[np.ndarray], np.ndarray],
        t_range: Tuple[float, float],
        noise_var: Any,
        scale: float = 1.0,
    ) -> None:
        if not callable(curve):
            raise TypeError(
                f"'curve': expected a callable t -> (len(t), d) array, got {type(curve).__name__}"
            )
        try:
            t0, t1 = (float(v) for v in t_range)
        except (TypeError, ValueError):
            raise TypeError(f"'t_range': expected (start, stop), got {t_range!r}") from None
        if not (math.isfinite(t0) and math.isfinite(t1) and t0 < t1):
            raise ValueError(f"'t_range': need finite start < stop, got {t_range!r}")
        probe = np.asarray(curve(np.array([t0, 0.5 * (t0 + t1), t1])), dtype=np.float64)
        if probe.ndim != 2 or probe.shape[0] != 3:
            raise ValueError(
                f"'curve': must map (m,) times to an (m, d) array, got shape {probe.shape} for m = 3"
            )
        d = probe.shape[1]
        v = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), (d,)).copy()
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"'noise_var': variances must be finite and >= 0, got {v}")
        s = float(scale)
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"'scale': must be positive and finite, got {scale!r}")
        self.curve, self.t_range, self.noise_var, self.scale = curve, (t0, t1), v, s

    @property
    def dim(self) -> int:
        return self.noise_var.size

    def points(self, t: np.ndarray) -> np.ndarray:
        """``scale * c(t)``, (m, d)."""
        return self.scale * np.asarray(self.curve(np.asarray(t, dtype=np.float64)), dtype=np.float64)

    def after_step(self, beta: float) -> "CurveData":
        """The distribution of ``sqrt(1 - beta) X + sqrt(beta) Z``."""
        b = _beta(beta, "beta")
        a = math.sqrt(1.0 - b)
        return CurveData(self.curve, self.t_range, (1.0 - b) * self.noise_var + b, self.scale * a)

    def second_moment(self, n: int = 2048) -> float:
        """``E |X|^2`` (Gauss-Legendre over t)."""
        t, w = _legendre_panels(*self.t_range, 64, n // 64, grade=0)
        p = self.points(t)
        return float(
            (w * (p * p).sum(axis=1)).sum() / (self.t_range[1] - self.t_range[0]) + self.noise_var.sum()
        )

    def entropy(self, *, level: int = 1, check: bool = True, chunk: int = 2048) -> Entropy:
        """``H(X) = -E log p(X)`` in nats by nested quadrature.

        ``p(x) = (1 / |t_range|) integral N(x; scale c(t), diag(noise_var)) dt``.
        The outer expectation is over ``t`` (Gauss-Legendre on panels, graded
        geometrically towards both ends, where p has its edge layers) and
        over the standardized noise ``z`` (a tensor Gauss-Hermite rule,
        ``x = scale c(t) + sqrt(noise_var) z``). The inner integral over the
        curve, for each outer point, is a Gauss-Legendre rule on a window
        around ``t`` ``(9 + |z|)`` noise widths wide (the peak of the
        integrand), plus a midpoint rule on a uniform grid over the rest of
        the curve (which picks up other passes of the curve near ``x``; it
        resolves them when the noise is wider than a few grid cells of the
        curve, and contributes nothing when they are many noise widths
        away). ``level`` scales the size of every rule; with ``check``
        the estimate at ``level + 1`` is computed as well, returned as the
        value, and the difference of the two is the error.
        """
        if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)) or level < 1:
            raise ValueError(f"'level': expected an int >= 1, got {level!r}")
        if np.any(self.noise_var == 0):
            return Entropy(-math.inf, 0.0)
        h = self._entropy(int(level), chunk)
        if not check:
            return Entropy(h, math.nan)
        h2 = self._entropy(int(level) + 1, chunk)
        return Entropy(h2, abs(h2 - h))

    def _entropy(self, level: int, chunk: int) -> float:
        t0, t1 = self.t_range
        length = t1 - t0
        d = self.dim
        f = level
        # outer rule over t: uniform panels plus geometric refinement towards both ends
        tt, wt = _legendre_panels(t0, t1, 16 * f, 8, grade=10)
        wt = wt / length
        # outer rule over z: tensor Gauss-Hermite (probabilists'), weights summing to 1
        nz = 6 + 4 * f if d <= 2 else 2 + 2 * f
        zn, zw = np.polynomial.hermite_e.hermegauss(nz)
        zw = zw / zw.sum()
        Z = np.stack(np.meshgrid(*([zn] * d), indexing="ij"), axis=-1).reshape(-1, d)
        WZ = np.prod(np.stack(np.meshgrid(*([zw] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1)
        sd = np.sqrt(self.noise_var)
        sd_max = float(sd.max())
        # speed |d(scale c)/dt| at the outer nodes, by central differences
        h = 1e-6 * length
        lo = np.maximum(tt - h, t0)
        hi = np.minimum(tt + h, t1)
        speed = np.linalg.norm(self.points(hi) - self.points(lo), axis=1) / (hi - lo)
        # inner rules: a window rule and a coarse grid
        gx, gw = np.polynomial.legendre.leggauss(24 * f)
        n_c = 256 * f
        tc = t0 + (np.arange(n_c) + 0.5) * (length / n_c)
        Pc = self.points(tc)
        log_dtc = math.log(length / n_c)
        inv_v = 1.0 / self.noise_var
        log_norm = -0.5 * (d * _LOG_2PI + np.log(self.noise_var).sum())
        # all outer points (t_i, z_j)
        Ti = np.repeat(np.arange(tt.size), Z.shape[0])
        Zj = np.tile(np.arange(Z.shape[0]), tt.size)
        Pt = self.points(tt)
        total = 0.0
        for a in range(0, Ti.size, chunk):
            ti, zj = Ti[a : a + chunk], Zj[a : a + chunk]
            x = Pt[ti] + sd * Z[zj]  # (m, d)
            half = (9.0 + np.linalg.norm(Z[zj], axis=1)) * sd_max / np.maximum(speed[ti], 1e-300)
            wa = np.maximum(tt[ti] - half, t0)
            wb = np.minimum(tt[ti] + half, t1)
            mid, rad = 0.5 * (wa + wb), 0.5 * (wb - wa)
            tw = mid[:, None] + rad[:, None] * gx[None, :]  # (m, nw)
            Pw = self.points(tw.reshape(-1)).reshape(tw.shape + (d,))
            qw = -0.5 * (((x[:, None, :] - Pw) ** 2) * inv_v).sum(axis=2) + np.log(rad[:, None] * gw[None, :])
            qc = -0.5 * (((x[:, None, :] - Pc[None, :, :]) ** 2) * inv_v).sum(axis=2) + log_dtc
            inside = (tc[None, :] >= wa[:, None]) & (tc[None, :] <= wb[:, None])
            qc = np.where(inside, -np.inf, qc)
            q = np.concatenate([qw, qc], axis=1)
            qmax = q.max(axis=1, keepdims=True)
            logp = qmax[:, 0] + np.log(np.exp(q - qmax).sum(axis=1)) + log_norm - math.log(length)
            total -= float((wt[ti] * WZ[zj] * logp).sum())
        return total


class DiscreteData:
    """A distribution over a finite set whose entropy is known.

    Parameters
    ----------
    entropy_bits : float
        ``H(X)`` in bits (>= 0).
    """

    def __init__(self, entropy_bits: float) -> None:
        h = float(entropy_bits)
        if not (math.isfinite(h) and h >= 0):
            raise ValueError(f"'entropy_bits': must be finite and >= 0, got {entropy_bits!r}")
        self.entropy_bits = h

    def entropy(self) -> Entropy:
        return Entropy(self.entropy_bits * LOG2, 0.0)


def _legendre_panels(
    a: float, b: float, n_panels: int, per_panel: int, grade: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [a, b]: ``n_panels`` equal panels,
    the first and last of them further split geometrically (ratio 1/4,
    ``grade`` times) towards the ends."""
    edges = np.linspace(a, b, n_panels + 1)
    if grade:
        w = edges[1] - edges[0]
        g = w * 0.25 ** np.arange(grade, 0, -1)  # tiny .. w/4
        left = a + np.concatenate([[0.0], g])
        right = b - np.concatenate([g[::-1], [0.0]])
        edges = np.concatenate([left, edges[1:-1], right])
    x, w = np.polynomial.legendre.leggauss(per_panel)
    lo, hi = edges[:-1], edges[1:]
    mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
    return (mid[:, None] + rad[:, None] * x).reshape(-1), (rad[:, None] * w).reshape(-1)


def swiss_roll_data(noise: float = 0.0) -> CurveData:
    """The distribution that :func:`heatbath.data.swiss_roll` samples with
    this ``noise`` (raw units): ``t`` uniform on [1.5 pi, 4.5 pi], the point
    ``(t cos t, t sin t)`` plus ``N(0, noise^2 I)``, shifted and scaled by the
    noiseless roll's population moments."""
    from ..data import toy

    n = float(noise)
    if not (math.isfinite(n) and n >= 0):
        raise ValueError(f"'noise': must be >= 0, got {noise!r}")
    mean, std = toy._ROLL_MEAN, toy._ROLL_STD

    def curve(t: np.ndarray) -> np.ndarray:
        return (np.stack([t * np.cos(t), t * np.sin(t)], axis=-1) - mean) / std

    return CurveData(curve, (toy._T0, toy._T1), (n / std) ** 2)


def step1_ceiling(
    data: Any, step1_beta: float, *, abar_T: Optional[float] = None, check: bool = True
) -> Ceiling:
    """The largest expected K (bits per sample) of any Gaussian diffusion
    model with first forward step ``step1_beta`` on ``data`` (a
    :class:`GaussianData` or :class:`CurveData`): ``-H(X^1)``, plus
    ``abar_T (E|X^0|^2 - d) / 2`` nats when the model's ``abar_T`` is given
    (see the module's docstring). A :class:`DiscreteData` gives ``-H(X^0)``,
    the ceiling of binomial diffusion (``step1_beta`` ignored)."""
    if isinstance(data, DiscreteData):
        return Ceiling(-data.entropy_bits, 0.0, "-H(X^0), exact")
    if not isinstance(data, (GaussianData, CurveData)):
        raise TypeError(
            f"'data': expected GaussianData, CurveData or DiscreteData, got {type(data).__name__}"
        )
    x1 = data.after_step(_beta(step1_beta))
    if isinstance(x1, GaussianData):
        h, method = x1.entropy(), "-H(X^1), closed form"
    else:
        h, method = x1.entropy(check=check), "-H(X^1), quadrature"
    nats = -h.nats
    if abar_T is not None:
        a = float(abar_T)
        if not 0.0 <= a < 1.0:
            raise ValueError(f"'abar_T': must lie in [0, 1), got {abar_T!r}")
        nats += 0.5 * a * (data.second_moment() - data.dim)
    return Ceiling(nats / LOG2, h.error / LOG2, method)
