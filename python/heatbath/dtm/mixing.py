"""Mixing diagnostics for Gibbs chains: autocorrelation of a chain statistic,
integrated autocorrelation time, effective sample size and the number of
sweeps a chain needs to decorrelate.

A series ``x`` of shape (n_sweeps,) or (n_sweeps, n_chains) is one scalar
statistic per recorded sweep (a random projection of the visible spins, their
magnetization, the energy). Chains are centred on their own means (chains of a
DTM step run under different inputs x^t, so their means differ) and the
autocovariances are pooled over chains::

    C(k) = sum_c sum_{t < n - k} (x_tc - m_c)(x_{t+k,c} - m_c) / (n n_chains)
    rho(k) = C(k) / C(0)

(the 1/n estimator: biased towards 0 by k/n, but positive definite). Centring
each chain on its own mean lowers every rho(k) by about tau / n (the variance
of a chain mean), which matters for short series; chains that sample one
distribution (an MEBM's persistent chains) can instead be centred on the mean
over all chains (``center="global"``), which has no such bias. For chains that
must keep their own means, ``debias=True`` undoes the bias to first order:
``rho(k) = rho_hat(k) (1 - tau/n) + (tau/n)(1 - k/n)``, with ``tau`` from the
corrected values (a fixed point; good while tau << n). The
integrated time is ``tau = 1 + 2 sum_{k=1}^{M} rho(k)`` with Sokal's window:
the smallest M with ``M >= c tau(M)``. For an AR(1) series with coefficient
rho, ``rho(k) = rho^k`` and ``tau = (1 + rho) / (1 - rho)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

__all__ = [
    "MixingReport",
    "autocorrelation",
    "chain_statistic",
    "effective_sample_size",
    "integrated_time",
    "mixing_report",
    "sweeps_to_decorrelate",
]


def _series(x: Any, name: str = "x") -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected real values, got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"'{name}': expected shape (n_sweeps,) or (n_sweeps, n_chains), got {a.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"'{name}': needs at least 2 sweeps, got {a.shape[0]}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"'{name}': must be finite")
    return a.astype(np.float64)


def autocorrelation(x: Any, max_lag: Optional[int] = None, center: str = "chain", debias: bool = False
                    ) -> np.ndarray:
    """Normalized autocorrelation ``rho(0..max_lag)`` (float64, rho(0) = 1),
    pooled over chains (columns). ``max_lag`` defaults to n_sweeps - 1.
    ``center``: ``"chain"`` (each chain on its own mean) or ``"global"`` (the
    mean of all chains); ``debias`` corrects own-mean centring for its bias
    (see the module notes). A series with no variance gives rho = 1 at every
    lag (it never moved)."""
    a = _series(x)
    if center not in ("chain", "global"):
        raise ValueError(f"'center': expected 'chain' or 'global', got {center!r}")
    n = a.shape[0]
    if max_lag is None:
        max_lag = n - 1
    max_lag = _index(max_lag, "max_lag")
    if not 0 <= max_lag < n:
        raise ValueError(f"'max_lag': must lie in [0, {n - 1}], got {max_lag}")
    a = a - (a.mean(axis=0, keepdims=True) if center == "chain" else a.mean())
    m = 1 << int(math.ceil(math.log2(2 * n)))
    f = np.fft.rfft(a, n=m, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=m, axis=0)[: max_lag + 1].sum(axis=1)
    if acov[0] <= 1e-12 * max(1.0, float(np.abs(a).max()) ** 2) * a.size:
        return np.ones(max_lag + 1)
    rho = acov / acov[0]
    if debias and center == "chain":
        lag = np.arange(rho.size)
        window = max(1, min(rho.size - 1, n // 3))
        c = rho.copy()
        for _ in range(50):
            tau = min(1.0 + 2.0 * float(np.clip(c[1 : window + 1], 0, None).sum()), 0.5 * n)
            new = rho * (1 - tau / n) + (tau / n) * (1 - lag / n)
            new[0] = 1.0
            if np.allclose(new, c, atol=1e-6):
                break
            c = new
        rho = c
    return rho


def integrated_time(x: Any, c: float = 5.0, rho: Optional[np.ndarray] = None) -> float:
    """Integrated autocorrelation time in sweeps (>= 1 for positively
    correlated chains), with Sokal's automatic window of ``c``. When no window
    fits inside the series the sum over all lags is returned (a lower bound)."""
    c = _positive_float(c, "c")
    r = autocorrelation(x) if rho is None else _rho(rho)
    taus = 1.0 + 2.0 * np.cumsum(r[1:])
    if taus.size == 0:
        return 1.0
    m = np.arange(1, taus.size + 1)
    ok = m >= c * taus
    k = int(np.argmax(ok)) if ok.any() else taus.size - 1
    return float(max(taus[k], 1e-12))


def effective_sample_size(x: Any, c: float = 5.0) -> float:
    """n_sweeps * n_chains / tau."""
    a = _series(x)
    return float(a.size / max(integrated_time(a, c), 1e-12))


def _index(v: Any, name: str) -> int:
    import operator

    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an int, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an int, got {type(v).__name__}") from None


def _positive_float(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected a number, got {type(v).__name__}") from None
    if not 0 < f < math.inf:
        raise ValueError(f"'{name}': must be a finite number > 0, got {v!r}")
    return f


def _rho(rho: Any) -> np.ndarray:
    """An autocorrelation sequence given by the caller: 1-D, finite."""
    try:
        r = np.asarray(rho, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"'rho': expected an array of floats, got {type(rho).__name__}") from None
    if r.ndim != 1 or r.size < 1:
        raise ValueError(f"'rho': expected a 1-D array (rho(0), rho(1), ...), got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("'rho': must be finite")
    return r


def sweeps_to_decorrelate(x: Any = None, threshold: float = math.exp(-1), rho: Optional[np.ndarray] = None
                          ) -> Optional[int]:
    """First lag k >= 1 with ``rho(k) < threshold``; None when the series never
    gets there (the chain needs more sweeps than were recorded)."""
    r = autocorrelation(x) if rho is None else _rho(rho)
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"'threshold': must be finite, got {threshold}")
    below = np.flatnonzero(r[1:] < threshold)
    return int(below[0]) + 1 if below.size else None


@dataclass
class MixingReport:
    """Mixing of one chain statistic.

    Attributes
    ----------
    rho : ndarray (max_lag + 1,)
        Autocorrelation by lag (in sweeps).
    tau : float
        Integrated autocorrelation time (sweeps).
    ess : float
        Effective sample size of the recorded series (all chains).
    decorrelation_sweeps : int or None
        First lag with rho below ``threshold`` (None: more than max_lag).
    threshold : float
    n_sweeps, n_chains : int
    """

    rho: np.ndarray
    tau: float
    ess: float
    decorrelation_sweeps: Optional[int]
    threshold: float
    n_sweeps: int
    n_chains: int

    def rho_at(self, lag: int) -> float:
        return float(self.rho[min(int(lag), self.rho.size - 1)])

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("rho")
        return d


def mixing_report(x: Any, threshold: float = math.exp(-1), c: float = 5.0,
                  max_lag: Optional[int] = None, center: str = "chain", debias: bool = False) -> MixingReport:
    """Autocorrelation, tau, ESS and sweeps to decorrelate of a series
    (n_sweeps,) or (n_sweeps, n_chains); ``center`` and ``debias`` as in
    :func:`autocorrelation`."""
    a = _series(x)
    rho_full = autocorrelation(a, center=center, debias=debias)
    tau = integrated_time(a, c, rho_full)
    ml = a.shape[0] - 1 if max_lag is None else min(int(max_lag), a.shape[0] - 1)
    return MixingReport(
        rho=rho_full[: ml + 1],
        tau=tau,
        ess=float(a.size / tau),
        decorrelation_sweeps=sweeps_to_decorrelate(rho=rho_full, threshold=threshold),
        threshold=float(threshold),
        n_sweeps=int(a.shape[0]),
        n_chains=int(a.shape[1]),
    )


def chain_statistic(states: Any, nodes: Any = None, kind: str = "projection", seed: int = 0) -> np.ndarray:
    """A scalar per (record, chain) from recorded spin states (n_records,
    n_chains, n_nodes): ``"projection"`` (the chosen nodes' spins projected on
    a fixed random unit vector, numpy ``default_rng(seed)``) or
    ``"magnetization"`` (their mean). Returns (n_records, n_chains) float64."""
    s = np.asarray(states)
    if s.ndim != 3:
        raise ValueError(f"'states': expected shape (n_records, n_chains, n_nodes), got {s.shape}")
    if s.dtype.kind not in "biuf" or (s.dtype.kind == "f" and not np.all(np.isfinite(s))):
        raise ValueError("'states': expected finite real numbers")
    if nodes is not None:
        nd = np.asarray(nodes)
        if nd.dtype.kind not in "iu" or (nd.size and (int(nd.min()) < 0 or int(nd.max()) >= s.shape[2])):
            raise ValueError(f"'nodes': expected node indices in [0, {s.shape[2]})")
        s = s[:, :, nd.astype(np.int64)]
    s = s.astype(np.float32)
    if kind == "magnetization":
        return s.mean(axis=2).astype(np.float64)
    if kind == "projection":
        u = np.random.default_rng(seed).standard_normal(s.shape[2]).astype(np.float32)
        u /= np.linalg.norm(u)
        return (s @ u).astype(np.float64)
    raise ValueError(f"'kind': expected 'projection' or 'magnetization', got {kind!r}")
