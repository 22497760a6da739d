"""Noise schedules of Gaussian diffusion, as float64 tables.

A schedule is a sequence of betas ``beta_1 .. beta_T`` (index ``t = 0 .. T-1``
here, as in diffusers): the forward process is
``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)`` and
``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with
``abar_t = prod_{s <= t} (1 - beta_s)``.

Schedules (the names diffusers uses, plus the two of Sohl-Dickstein et al.
2015):

``linear``
    ``linspace(beta_start, beta_end, T)`` (DDPM: 1e-4 .. 0.02). With
    ``rescale_for_timesteps=True`` both ends are multiplied by ``1000 / T``
    (improved-diffusion's ``get_named_beta_schedule``).
``scaled_linear``
    ``linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2`` (latent diffusion).
``squaredcos_cap_v2``
    The cosine schedule of Nichol & Dhariwal (2021): ``abar(t) = cos((t/T +
    s) / (1 + s) pi/2)^2``, ``s = 0.008``, ``beta_t = min(1 - abar((t+1)/T) /
    abar(t/T), max_beta)``, ``max_beta = 0.999``.
``sigmoid``
    ``sigmoid(linspace(-6, 6, T)) (beta_end - beta_start) + beta_start``
    (GeoDiff).
``sohl_dickstein``
    The 2015 paper's schedule (its code's ``generate_beta_arr`` with the
    learned perturbation at zero): ``b = 1 / linspace(T, 2, T)`` passed through
    logit and sigmoid, ``beta = min_beta + b (1 - min_beta - 1e-5)`` with
    ``min_beta = 1e-6``, plus ``first_beta`` (1e-3) on the first step.
``jsd``
    ``1/T, 1/(T-1), ..., 1`` (``beta_t = 1 / (T - t)``): the schedule under
    which ``x_T`` carries no information (``abar_T = 0``).

Any of them may be rescaled to zero terminal SNR (Lin et al. 2024,
"Common diffusion noise schedules and sample steps are flawed", Algorithm 1).

Examples
--------
>>> from heatbath.schedules import NoiseSchedule
>>> s = NoiseSchedule("linear", 1000)
>>> round(float(s.alphas_cumprod[-1]), 8)
4.036e-05
>>> s.sqrt_alphas_cumprod.dtype
dtype('float64')
"""

from __future__ import annotations

import math
import operator
from typing import Any, Sequence, Union

import numpy as np

__all__ = ["NoiseSchedule", "SCHEDULES", "make_betas", "rescale_zero_terminal_snr"]

SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", "sohl_dickstein", "jsd")


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_betas(
    schedule: str,
    num_train_timesteps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    *,
    rescale_for_timesteps: bool = False,
    max_beta: float = 0.999,
    first_beta: float = 1e-3,
) -> np.ndarray:
    """The betas of a named schedule, float64.

    Parameters
    ----------
    schedule : str
        One of :data:`SCHEDULES`.
    num_train_timesteps : int
        T, the number of diffusion steps.
    beta_start, beta_end : float
        Ends of the ``linear``, ``scaled_linear`` and ``sigmoid`` schedules.
    rescale_for_timesteps : bool
        ``linear`` only: multiply both ends by ``1000 / T`` (improved-diffusion).
    max_beta : float
        Cap of ``squaredcos_cap_v2``.
    first_beta : float
        Extra beta of the first step of ``sohl_dickstein``.

    Returns
    -------
    numpy.ndarray of shape (T,), float64
    """
    T = _as_count(num_train_timesteps, "num_train_timesteps", MAX_TIMESTEPS)
    for name, v, lo, hi in (("beta_start", beta_start, 0.0, 1.0), ("beta_end", beta_end, 0.0, 1.0),
                            ("max_beta", max_beta, 0.0, 1.0), ("first_beta", first_beta, 0.0, 1.0)):
        if isinstance(v, (bool, str, bytes)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"'{name}': expected a real number, got {type(v).__name__}")
        if not lo <= float(v) <= hi:  # NaN fails too
            raise ValueError(f"'{name}': must lie in [{lo}, {hi}], got {v}")
    betas = _named_betas(schedule, T, float(beta_start), float(beta_end), rescale_for_timesteps,
                         float(max_beta), float(first_beta))
    if not np.all((betas > 0) & (betas <= 1)):
        raise ValueError(f"'beta_start', 'beta_end', 'max_beta': the {schedule} schedule's betas must lie "
                         "in (0, 1]")
    return betas


def _named_betas(schedule: str, T: int, beta_start: float, beta_end: float, rescale_for_timesteps: bool,
                 max_beta: float, first_beta: float) -> np.ndarray:
    if schedule == "linear":
        scale = 1000.0 / T if rescale_for_timesteps else 1.0
        return np.linspace(scale * beta_start, scale * beta_end, T, dtype=np.float64)
    if schedule == "scaled_linear":
        return np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=np.float64) ** 2
    if schedule == "squaredcos_cap_v2":

        def abar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        return np.array(
            [min(1 - abar((i + 1) / T) / abar(i / T), max_beta) for i in range(T)], dtype=np.float64
        )
    if schedule == "sigmoid":
        return _sigmoid(np.linspace(-6.0, 6.0, T)) * (beta_end - beta_start) + beta_start
    if schedule == "sohl_dickstein":
        if T < 2:
            raise ValueError(f"'num_train_timesteps': sohl_dickstein needs at least 2 steps, got {T}")
        min_beta = np.full(T, 1e-6)
        min_beta[0] += first_beta
        baseline = 1.0 / np.linspace(T, 2.0, T)
        return min_beta + _sigmoid(_logit(baseline)) * (1.0 - min_beta - 1e-5)
    if schedule == "jsd":
        return 1.0 / np.linspace(T, 1.0, T)
    raise ValueError(
        f"'schedule': expected one of {', '.join(SCHEDULES)} or an array of betas, got {schedule!r}"
    )


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Rescale betas so that ``abar_T = 0`` (zero terminal SNR) while keeping
    ``abar_1`` (Lin et al. 2024, Algorithm 1): ``sqrt(abar)`` is shifted so its
    last value is 0 and scaled so its first value is unchanged.

    Parameters
    ----------
    betas : numpy.ndarray of shape (T,), float64

    Returns
    -------
    numpy.ndarray of shape (T,), float64; the last beta is 1.
    """
    try:
        b = np.asarray(betas, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"'betas': expected an array of floats, got {type(betas).__name__}") from None
    if b.ndim != 1 or b.size < 2:
        raise ValueError(f"'betas': expected a 1-D array of at least 2 values, got shape {b.shape}")
    if not np.all((b > 0) & (b < 1)):
        raise ValueError("'betas': values must lie in (0, 1) (and not be NaN)")
    s = np.sqrt(np.cumprod(1.0 - b))
    s0, sT = s[0], s[-1]
    if not s0 > sT:
        raise ValueError("'betas': abar_T equals abar_1 in float64; there is nothing to rescale")
    s = (s - sT) * (s0 / (s0 - sT))
    abar = s**2
    alphas = np.concatenate([abar[:1], abar[1:] / abar[:-1]])
    return 1.0 - alphas


# Longest schedule: its float64 tables (several of T values) stay within memory.
MAX_TIMESTEPS = 2**24


def _as_count(v: Any, name: str, maximum: int = 2**62) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        n = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None
    if n < 1:
        raise ValueError(f"'{name}': must be >= 1, got {n}")
    if n > maximum:
        raise ValueError(f"'{name}': must be <= {maximum}, got {n}")
    return n


class NoiseSchedule:
    """The float64 tables of a Gaussian diffusion schedule.

    Parameters
    ----------
    schedule : str or array_like
        A name from :data:`SCHEDULES`, or the betas themselves (shape (T,),
        each in (0, 1]).
    num_train_timesteps : int
        T (ignored when betas are given).
    beta_start, beta_end, rescale_for_timesteps, max_beta, first_beta
        See :func:`make_betas`.
    rescale_zero_snr : bool
        Rescale to zero terminal SNR (:func:`rescale_zero_terminal_snr`).

    Attributes
    ----------
    betas, alphas, alphas_cumprod, alphas_cumprod_prev : ndarray (T,), float64
        ``alphas = 1 - betas``; ``alphas_cumprod_prev[t] = abar_{t-1}`` with
        ``abar_{-1} = 1``.
    sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod : ndarray (T,), float64
    log_one_minus_alphas_cumprod, sqrt_recip_alphas_cumprod,
    sqrt_recipm1_alphas_cumprod : ndarray (T,), float64
    posterior_variance : ndarray (T,), float64
        ``beta_t (1 - abar_{t-1}) / (1 - abar_t)``, the variance of
        ``q(x_{t-1} | x_t, x_0)``.
    posterior_log_variance_clipped : ndarray (T,), float64
        Its log, with the first entry (0) replaced by the second.
    posterior_mean_coef1, posterior_mean_coef2 : ndarray (T,), float64
        ``mean = coef1 x_0 + coef2 x_t``.
    snr, log_snr : ndarray (T,), float64
        ``abar / (1 - abar)`` and its log.
    """

    def __init__(
        self,
        schedule: Union[str, Sequence[float], np.ndarray] = "linear",
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        *,
        rescale_for_timesteps: bool = False,
        max_beta: float = 0.999,
        first_beta: float = 1e-3,
        rescale_zero_snr: bool = False,
    ) -> None:
        if isinstance(schedule, str):
            betas = make_betas(
                schedule,
                num_train_timesteps,
                beta_start,
                beta_end,
                rescale_for_timesteps=rescale_for_timesteps,
                max_beta=max_beta,
                first_beta=first_beta,
            )
            self.name = schedule
        else:
            betas = np.array(schedule, dtype=np.float64).reshape(-1) if np.ndim(schedule) == 1 else None
            if betas is None:
                raise ValueError(f"'schedule': betas must be 1-D, got shape {np.shape(schedule)}")
            if betas.size == 0 or not np.all((betas > 0) & (betas <= 1)):
                raise ValueError("'schedule': betas must be non-empty and lie in (0, 1]")
            self.name = "custom"
        if rescale_zero_snr:
            betas = rescale_zero_terminal_snr(betas)
        self.rescale_zero_snr = bool(rescale_zero_snr)
        self._set_betas(betas)

    def _set_betas(self, betas: np.ndarray) -> None:
        b = np.ascontiguousarray(betas, dtype=np.float64)
        self.betas = b
        self.num_train_timesteps = int(b.size)
        self.alphas = 1.0 - b
        a = np.cumprod(self.alphas)
        self.alphas_cumprod = a
        self.alphas_cumprod_prev = np.concatenate([[1.0], a[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            self.sqrt_alphas_cumprod = np.sqrt(a)
            self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - a)
            self.log_one_minus_alphas_cumprod = np.log(1.0 - a)
            self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / a)
            self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / a - 1.0)
            self.posterior_variance = b * (1.0 - self.alphas_cumprod_prev) / (1.0 - a)
            pv = self.posterior_variance
            self.posterior_log_variance_clipped = np.log(
                np.concatenate([pv[1:2], pv[1:]]) if pv.size > 1 else pv
            )
            self.posterior_mean_coef1 = b * np.sqrt(self.alphas_cumprod_prev) / (1.0 - a)
            self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (1.0 - a)
            self.snr = a / (1.0 - a)
            self.log_snr = np.log(a) - np.log1p(-a)

    def __len__(self) -> int:
        return self.num_train_timesteps

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule({self.name!r}, T={self.num_train_timesteps}, "
            f"rescale_zero_snr={self.rescale_zero_snr})"
        )

    def check_timesteps(self, t: Any, name: str = "timestep") -> np.ndarray:
        """Timesteps as an int64 array, checked to lie in [0, T).

        Parameters
        ----------
        t : int or array_like of int
        name : str
            Argument name for the error message.
        """
        if type(t).__module__.split(".")[0] == "torch" and hasattr(t, "detach"):
            t = t.detach().cpu().numpy()  # a pipeline's timestep tensor, wherever it lives
        arr = np.asarray(t)
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                if arr.size and (arr.min() < 0 or arr.max() >= self.num_train_timesteps):
                    raise ValueError(
                        f"'{name}': timesteps must lie in [0, {self.num_train_timesteps}), got values in "
                        f"[{arr.min()}, {arr.max()}]"
                    )
                arr = arr.astype(np.int64)
            else:
                raise TypeError(f"'{name}': expected integer timesteps, got dtype {arr.dtype}")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= self.num_train_timesteps:
            raise ValueError(
                f"'{name}': timesteps must lie in [0, {self.num_train_timesteps}), got up to {int(arr.max())}"
            )
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_train_timesteps):
            raise ValueError(
                f"'{name}': timesteps must lie in [0, {self.num_train_timesteps}), got values in "
                f"[{int(arr.min())}, {int(arr.max())}]"
            )
        return arr


def as_schedule(
    schedule: Union[str, Sequence[float], np.ndarray, NoiseSchedule], **kwargs: Any
) -> NoiseSchedule:
    """A NoiseSchedule from a schedule, a name or betas."""
    if isinstance(schedule, NoiseSchedule):
        return schedule
    return NoiseSchedule(schedule, **kwargs)
