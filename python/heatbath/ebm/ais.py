"""Annealed importance sampling (Neal 2001; the nonequilibrium estimator of
Jarzynski's equality), reverse AIS, and exact log partition functions.

Generic part: :func:`ais` and :func:`reverse_ais` take callables, so any
model with an unnormalized log density ``log f_beta(x)`` along a path
``beta: 0 -> 1`` and a transition that leaves ``p_beta`` invariant can use
them (RBMs here; lattice and sparse-graph models elsewhere).

    log w = sum_k [log f_{beta_k}(x_{k-1}) - log f_{beta_{k-1}}(x_{k-1})],
    x_k ~ T_{beta_k}(x_{k-1}, .),    E[w] = Z_1 / Z_0.

RBM part: the path of Salakhutdinov and Murray (2008) from a base-rate model
``p_A(v) ∝ exp(a.v)`` (``a``: log-odds of the data's feature means) to the
RBM, ``p_beta(v, h) ∝ exp((1 - beta) a.v - beta E(v, h))`` with the hidden
units summed analytically in ``log f``; reverse AIS (RAISE, Burda, Grosse and
Salakhutdinov 2015) run from samples of the model gives an estimate of
``Z_0 / Z`` whose log is, in expectation, an upper bound on log Z where AIS's is
a lower bound; exact log Z by enumerating the smaller layer.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np

from .. import _backend
from .. import random as hr
from .._blas import in_blas_threads
from .._guard import as_float, as_float_array, check_values
from ._estimates import LogZEstimate
from ._units import (
    TAG_AIS,
    RBMInterface,
    bernoulli_units,
    gaussian_units,
    positive_int,
    seed_from,
    stream_of,
    to_xp,
)

__all__ = [
    "ais",
    "reverse_ais",
    "salakhutdinov_betas",
    "linear_betas",
    "rbm_ais",
    "rbm_raise",
    "rbm_exact_log_z",
    "base_rate_biases",
]

LogRatio = Callable[[Any, float, float], Any]


# ---------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------


def salakhutdinov_betas() -> np.ndarray:
    """The schedule of Salakhutdinov and Murray (2008): 0..0.5 in steps of
    1e-3, 0.5..0.9 in steps of 1e-4, 0.9..1 in steps of 1e-5 (14,501 values,
    float64, from 0 to 1)."""
    return np.concatenate(
        [
            np.linspace(0.0, 0.5, 500, endpoint=False),
            np.linspace(0.5, 0.9, 4000, endpoint=False),
            np.linspace(0.9, 1.0, 10000, endpoint=False),
            [1.0],
        ]
    )


def linear_betas(n: int) -> np.ndarray:
    """``n`` equally spaced inverse temperatures from 0 to 1 (float64)."""
    n = positive_int(n, "n")
    if n < 2:
        raise ValueError(f"'n': a path needs at least 2 temperatures, got {n}")
    check_values(n, "n", "the path")
    return np.linspace(0.0, 1.0, n)


def as_betas(betas: Union[str, int, Any]) -> np.ndarray:
    if isinstance(betas, str):
        if betas != "salakhutdinov":
            raise ValueError(f"'betas': expected 'salakhutdinov', an int or an array, got {betas!r}")
        return salakhutdinov_betas()
    if np.ndim(betas) == 0:
        if isinstance(betas, (bool, np.bool_)) or not isinstance(betas, (int, np.integer)):
            raise TypeError(f"'betas': expected 'salakhutdinov', an int or an array, got {betas!r}")
        if not 2 <= betas <= 2**40:
            raise ValueError(f"'betas': a path needs at least 2 temperatures (and at most 2**40), got {betas}")
        return linear_betas(int(betas))
    b = as_float_array(betas, "betas").ravel()
    if b.size < 2 or b[0] != 0 or b[-1] != 1 or not np.all(np.diff(b) >= 0):
        raise ValueError("'betas': expected a non-decreasing path from 0 to 1 with at least 2 values")
    return b


# ---------------------------------------------------------------------------
# generic estimators
# ---------------------------------------------------------------------------


def _check_path(betas: Any, log_z0: Any) -> tuple:
    """(betas as a finite float64 path, log_z0 as a finite float)."""
    b = as_float_array(betas, "betas").ravel()
    if not np.all(np.isfinite(b)):
        raise ValueError("'betas': the path holds NaN or infinite values")
    z0 = as_float(log_z0, "log_z0")
    if not np.isfinite(z0):
        raise ValueError(f"'log_z0': must be finite, got {z0}")
    return b, z0


def _check_weights(lw: np.ndarray, log_f: Any) -> np.ndarray:
    """The log weights, none NaN (-inf is a run of weight 0)."""
    bad = int(np.isnan(lw).sum()) + int(np.count_nonzero(lw == np.inf))
    if bad:
        name = "log_f" if log_f is not None else "log_ratio"
        raise ValueError(f"'{name}': {bad} runs got NaN or +inf log weights")
    return lw


def _ratio_fn(log_f: Optional[Callable[[Any, float], Any]], log_ratio: Optional[LogRatio]) -> LogRatio:
    if log_ratio is not None:
        return log_ratio
    if log_f is None:
        raise TypeError("'log_f': give log_f(x, beta) or log_ratio(x, beta_from, beta_to)")
    return lambda x, b0, b1: log_f(x, b1) - log_f(x, b0)


@in_blas_threads
def ais(
    x0: Any,
    betas: Any,
    transition: Callable[[Any, float], Any],
    log_z0: float,
    *,
    log_f: Optional[Callable[[Any, float], Any]] = None,
    log_ratio: Optional[LogRatio] = None,
    progress: bool = False,
) -> LogZEstimate:
    """Annealed importance sampling of log Z_1.

    Parameters
    ----------
    x0 : state of n runs, exact samples of p_{beta_0}
        Any object the callables understand (e.g. an array of shape (n, d)).
    betas : array of shape (K + 1,)
        The path, from the base (beta_0) to the target (beta_K).
    transition : callable(x, beta) -> x
        A Markov step that leaves p_beta invariant (may work in place).
    log_z0 : float
        log Z of the base distribution.
    log_f : callable(x, beta) -> array of shape (n,), optional
        Unnormalized log density.
    log_ratio : callable(x, beta_from, beta_to) -> array of shape (n,), optional
        ``log f_to(x) - log f_from(x)``, when it is cheaper than two log_f calls.
    progress : bool
        A progress bar over the temperatures.

    Returns
    -------
    LogZEstimate (method "ais") with the per-run log weights.
    """
    from tqdm.auto import tqdm

    ratio = _ratio_fn(log_f, log_ratio)
    betas, log_z0 = _check_path(betas, log_z0)
    x = x0
    lw = None
    for k in tqdm(range(1, betas.size), disable=not progress, desc="AIS", unit="beta", leave=False,
                  mininterval=0.5):
        r = ratio(x, float(betas[k - 1]), float(betas[k]))
        if lw is None:  # a float64 copy, on the device of r
            lw = r.astype(np.float64) if hasattr(r, "astype") else np.array(r, dtype=np.float64)
        else:
            lw += r
        if k < betas.size - 1:
            x = transition(x, float(betas[k]))
    if lw is None:
        raise ValueError("'betas': a path needs at least 2 temperatures")
    return LogZEstimate.from_log_weights(_check_weights(to_xp(lw, np), log_f), log_z0, "ais")


@in_blas_threads
def reverse_ais(
    x1: Any,
    betas: Any,
    transition: Callable[[Any, float], Any],
    log_z0: float,
    *,
    log_f: Optional[Callable[[Any, float], Any]] = None,
    log_ratio: Optional[LogRatio] = None,
) -> LogZEstimate:
    """Reverse AIS: start from samples of the target p_{beta_K} and anneal
    back to the base. The weights estimate Z_0 / Z_1 without bias when x1 are
    exact samples, so the returned log Z_1 = log Z_0 - log mean w is, in
    expectation, an upper bound (AIS gives a lower one).

    Parameters are those of :func:`ais`, with ``x1`` samples of the target.

    Returns
    -------
    LogZEstimate (method "raise"); its log_weights are those of Z_0 / Z_1.
    """
    ratio = _ratio_fn(log_f, log_ratio)
    betas, log_z0 = _check_path(betas, log_z0)
    x = x1
    lw = None
    for k in range(betas.size - 1, 0, -1):
        r = ratio(x, float(betas[k]), float(betas[k - 1]))
        if lw is None:  # a float64 copy, on the device of r
            lw = r.astype(np.float64) if hasattr(r, "astype") else np.array(r, dtype=np.float64)
        else:
            lw += r
        if k > 1:
            x = transition(x, float(betas[k - 1]))
    if lw is None:
        raise ValueError("'betas': a path needs at least 2 temperatures")
    lw = _check_weights(to_xp(lw, np), log_f)
    inv = LogZEstimate.from_log_weights(lw, 0.0, "raise")
    return LogZEstimate(log_z0 - inv.log_z, inv.stderr, inv.ess, "raise", lw)


# ---------------------------------------------------------------------------
# RBMs
# ---------------------------------------------------------------------------


def base_rate_biases(data: Any, pseudocount: float = 1.0) -> np.ndarray:
    """Log-odds of the feature means of binary data, ``(sum + pc) / (n + 2 pc)``
    (float64, shape (n_features,)): the base-rate model of AIS."""
    d = to_xp(data, np)
    if d.ndim != 2 or d.shape[0] == 0:
        raise ValueError(f"'data': expected a non-empty 2-D array, got shape {tuple(d.shape)}")
    if d.dtype.kind not in "biuf" or not np.all((d >= 0) & (d <= 1)):
        raise ValueError("'data': expected values in [0, 1] (binary data; NaN refused)")
    pseudocount = as_float(pseudocount, "pseudocount")
    if not 0 < pseudocount < np.inf:
        raise ValueError(f"'pseudocount': must be a positive finite number, got {pseudocount}")
    p = (d.sum(axis=0, dtype=np.float64) + pseudocount) / (d.shape[0] + 2 * pseudocount)
    return np.log(p) - np.log1p(-p)


class RBMPath:
    """log f_beta and the Gibbs transition of the AIS path of an RBM, on
    float64 states of n runs (numpy or cupy), without allocation per step.

    The log weights are computed in float64; the Gibbs transitions run in the
    model's dtype (float32 by default: the fast kernels), on the float64
    pre-activations rounded to it. With ``row0`` the n runs are runs
    ``row0 .. row0 + n - 1`` of a larger run: the same Philox streams, each
    draw moved to the elements of those rows (sharded AIS)."""

    def __init__(self, rbm: RBMInterface, n: int, base: Any, xp, seed: int, row0: int = 0):
        self.rbm = rbm
        self.row0 = int(row0)
        self.xp = xp
        self.seed = seed
        self.counter = 0
        sigma = rbm._visible_sigma()
        self.gauss = sigma is not None
        params = rbm._params(xp)
        dt = np.dtype(params[0].dtype)
        W, c, b = (to_xp(a, xp).astype(np.float64) for a in params)
        nv, nh = rbm.n_features_in_, rbm.n_components
        self.W, self.Wt, self.c = xp.ascontiguousarray(W), xp.ascontiguousarray(W.T), c
        if self.gauss:
            sigma = np.asarray(sigma)
            self.b_s = xp.asarray(to_xp(b, np) / sigma)  # states hold v / sigma
            self.a = None
            self.log_z0 = float(nv * 0.5 * np.log(2 * np.pi) + np.log(sigma).sum() + nh * np.log(2.0))
        else:
            a = np.zeros(nv) if base is None else np.asarray(to_xp(base, np), dtype=np.float64).ravel()
            if a.shape != (nv,) or not np.all(np.isfinite(a)):
                raise ValueError(f"'base': expected {nv} finite base-rate biases, got shape {a.shape}")
            self.a = xp.asarray(a)
            self.b = b
            self.b_minus_a = b - self.a
            self.log_z0 = float(np.logaddexp(0, a).sum() + nh * np.log(2.0))
        self.pre = xp.empty((n, nh))
        self.t = xp.empty((n, nh))
        self.low = dt != np.float64
        self.pre_k = xp.empty((n, nh), dtype=dt) if self.low else self.pre
        self.V_k = xp.empty((n, nv), dtype=dt) if self.low else None
        self.W_k = xp.ascontiguousarray(self.W, dtype=dt)
        self.H = xp.empty((n, nh), dtype=dt)
        self.pv = xp.empty((n, nv), dtype=dt)
        self.zero_h_k = xp.zeros(nh, dtype=dt)
        if self.gauss:
            self.b_s_k = xp.ascontiguousarray(self.b_s, dtype=dt)
        else:
            self.b_k = xp.ascontiguousarray(self.b, dtype=dt)
            self.a_k = xp.ascontiguousarray(self.a, dtype=dt)
        self.s0 = xp.empty(n)
        self.s1 = xp.empty(n)
        self.pre_valid = False
        self.n, self.nv = n, nv

    def _next(self) -> int:
        self.counter += 1
        return stream_of(TAG_AIS, self.counter)

    def initial(self):
        """n exact samples of the base distribution."""
        xp = self.xp
        V = xp.empty((self.n, self.nv))
        zeros = xp.zeros((self.n, self.nv))
        off = self.row0 * self.nv
        if self.gauss:
            gaussian_units(zeros, self.b_s, 1.0, V, seed=self.seed, stream=self._next(), offset=off)
        else:
            bernoulli_units(
                zeros,
                xp.zeros(self.nv),
                V,
                seed=self.seed,
                stream=self._next(),
                scale=0.0,
                base=self.a,
                offset=off,
            )
        self.pre_valid = False
        return V

    def _softplus_sum(self, beta: float, out) -> None:
        xp = self.xp
        xp.multiply(self.pre, beta, out=self.t)
        xp.logaddexp(0.0, self.t, out=self.t)
        self.t.sum(axis=1, out=out)

    def log_ratio(self, V, b0: float, b1: float):
        xp = self.xp
        if not self.pre_valid:
            xp.matmul(V, self.Wt, out=self.pre)
            xp.add(self.pre, self.c, out=self.pre)
            self.pre_valid = True
        self._softplus_sum(b1, self.s1)
        self._softplus_sum(b0, self.s0)
        xp.subtract(self.s1, self.s0, out=self.s1)
        if not self.gauss:
            xp.matmul(V, self.b_minus_a, out=self.s0)
            xp.multiply(self.s0, b1 - b0, out=self.s0)
            xp.add(self.s1, self.s0, out=self.s1)
        return self.s1

    def transition(self, V, beta: float):
        xp = self.xp
        if not self.pre_valid:
            xp.matmul(V, self.Wt, out=self.pre)
            xp.add(self.pre, self.c, out=self.pre)
        if self.low:
            xp.copyto(self.pre_k, self.pre)
        bernoulli_units(
            self.pre_k,
            self.zero_h_k,
            self.H,
            seed=self.seed,
            stream=self._next(),
            scale=beta,
            offset=self.row0 * self.H.shape[1],
        )
        xp.matmul(self.H, self.W_k, out=self.pv)
        out = self.V_k if self.low else V
        off = self.row0 * self.nv
        if self.gauss:
            gaussian_units(
                self.pv, self.b_s_k, 1.0, out, seed=self.seed, stream=self._next(), scale=beta, offset=off
            )
        else:
            bernoulli_units(
                self.pv,
                self.b_k,
                out,
                seed=self.seed,
                stream=self._next(),
                scale=beta,
                base=self.a_k,
                offset=off,
            )
        if self.low:
            xp.copyto(V, self.V_k)
        self.pre_valid = False
        return V


def _path_for(
    rbm: RBMInterface, n_runs: int, data: Any, base: Any, seed: Any, device: Optional[str]
) -> RBMPath:
    rbm._check_fitted()
    n = positive_int(n_runs, "n_runs")
    check_values(n * (rbm.n_features_in_ + rbm.n_components + 2), "n_runs", f"{n} annealing runs")
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"'device': expected 'cpu' or 'cuda', got {device!r}")
    on_gpu = device == "cuda" or (device is None and _backend.is_cupy(rbm.components_))
    xp = _backend.cupy_module() if on_gpu else np
    if base is None and data is not None and rbm._visible_sigma() is None:
        d = rbm._X(data, "data")
        base = base_rate_biases(d)
    if seed is None:  # a fresh key from the model's own stream
        model_seed, stream = rbm._draw_key(TAG_AIS)
        key = int(hr.integers(0, 1 << 63, shape=1, seed=model_seed, stream=stream)[0])
    else:
        key = seed_from(seed)
    return RBMPath(rbm, n, base, xp, key)


def rbm_ais(
    rbm: Any,
    n_runs: int = 100,
    betas: Union[str, int, Any] = "salakhutdinov",
    data: Any = None,
    base: Any = None,
    seed: Any = None,
    device: Optional[str] = None,
    progress: bool = False,
) -> LogZEstimate:
    """AIS estimate of log Z of a fitted Bernoulli or Gaussian-Bernoulli RBM.

    Parameters
    ----------
    rbm : BernoulliRBM or GaussianBernoulliRBM
    n_runs : int
        Independent annealing runs (100 in Salakhutdinov and Murray).
    betas : "salakhutdinov", int or array
        The schedule: the 14,501 values of :func:`salakhutdinov_betas`, a
        number of equally spaced values, or an explicit path from 0 to 1.
    data : array of shape (n_samples, n_features), optional
        Training data whose base rates define the base model (Bernoulli);
        without it (and without ``base``) the base is uniform.
    base : array of shape (n_features,), optional
        Base-model visible biases (overrides ``data``).
    seed : int, optional
        Philox key of the runs (default: the model's stream).
    device : {"cpu", "cuda"}, optional
    progress : bool
        A progress bar over the temperatures.

    Returns
    -------
    LogZEstimate with stderr (delta method) and ESS of the importance weights.
    """
    path = _path_for(rbm, n_runs, data, base, seed, device)
    return ais(path.initial(), as_betas(betas), path.transition, path.log_z0, log_ratio=path.log_ratio,
               progress=progress)


def rbm_raise(
    rbm: Any,
    start: Any = None,
    n_runs: int = 100,
    betas: Union[str, int, Any] = "salakhutdinov",
    data: Any = None,
    base: Any = None,
    seed: Any = None,
    n_burn: int = 1000,
    device: Optional[str] = None,
) -> LogZEstimate:
    """Reverse AIS (RAISE) estimate of log Z: a stochastic upper bound when
    ``start`` are samples of the model.

    Parameters
    ----------
    start : array of shape (n_runs, n_features), optional
        Samples of the model to anneal from; by default ``n_runs`` chains of
        ``n_burn`` Gibbs sweeps (``rbm.sample``). Data vectors give the
        conservative estimate of Burda et al.
    Other parameters are those of :func:`rbm_ais`.

    Returns
    -------
    LogZEstimate (method "raise")
    """
    if start is None:
        rbm._check_fitted()
        n = positive_int(n_runs, "n_runs")
        check_values(n * (rbm.n_features_in_ + rbm.n_components + 2), "n_runs", f"{n} annealing runs")
        start = rbm.sample(n, k=positive_int(n_burn, "n_burn"), device=device)
    X = rbm._X(start, "start")
    path = _path_for(rbm, X.shape[0], data, base, seed, device)
    xp = path.xp
    V = xp.ascontiguousarray(to_xp(X, xp), dtype=np.float64)
    sigma = rbm._visible_sigma()
    if sigma is not None:
        V /= xp.asarray(sigma)
    return reverse_ais(V, as_betas(betas), path.transition, path.log_z0, log_ratio=path.log_ratio)


def _bits(start: int, count: int, m: int) -> np.ndarray:
    """Rows start .. start+count-1 of the 2^m binary states (float64, (count, m))."""
    idx = np.arange(start, start + count, dtype=np.int64)
    return ((idx[:, None] >> np.arange(m, dtype=np.int64)) & 1).astype(np.float64)


def rbm_exact_log_z(rbm: Any, max_units: int = 24, chunk: int = 1 << 16) -> LogZEstimate:
    """Exact log Z by enumerating the smaller layer (Bernoulli RBM) or the
    hidden layer (Gaussian-Bernoulli RBM), summing or integrating the other
    layer in closed form; float64, in chunks of ``chunk`` states.

    Raises
    ------
    ValueError
        When the enumerated layer has more than ``max_units`` units.
    """
    rbm._check_fitted()
    W, c, b = (to_xp(a, np).astype(np.float64) for a in rbm._params(np))
    nh, nv = W.shape
    sigma = rbm._visible_sigma()
    if sigma is not None:
        m = nh
        const = float(nv * 0.5 * np.log(2 * np.pi) + np.log(sigma).sum())
    else:
        m = min(nh, nv)
        const = 0.0
    if m > max_units:
        raise ValueError(
            f"'rbm': exact enumeration needs a layer of at most {max_units} units, the smaller has {m}; "
            "use method='ais'"
        )
    total = 1 << m
    parts = []
    for s in range(0, total, chunk):
        S = _bits(s, min(chunk, total - s), m)
        if sigma is not None:
            u = S @ W  # (states, nv)
            lf = S @ c + (u * (b / sigma) + 0.5 * u * u).sum(axis=1)
        elif nh <= nv:
            lf = S @ c + np.logaddexp(0, S @ W + b).sum(axis=1)
        else:
            lf = S @ b + np.logaddexp(0, S @ W.T + c).sum(axis=1)
        mx = lf.max()
        parts.append(mx + np.log(np.exp(lf - mx).sum()))
    parts = np.asarray(parts)
    mx = parts.max()
    log_z = float(mx + np.log(np.exp(parts - mx).sum()) + const)
    return LogZEstimate(log_z, 0.0, float(total), "exact")
