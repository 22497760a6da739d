"""Restricted Boltzmann machines: fused Gibbs half-steps, CD-k / PCD / PT-PCD
training, pseudo-likelihood, exact and AIS log-likelihood.

A Gibbs half-step is a GEMM done by numpy (BLAS) or cupy (cuBLAS) into a
preallocated buffer of pre-activations, then one heatbath kernel that adds the
bias, applies the sigmoid (or the Gaussian mean) and draws from Philox
``(seed, stream, element)``; the Gibbs loops allocate nothing per step. numpy
arrays run on the CPU, cupy arrays on the GPU.

:class:`BernoulliRBM` is a drop-in for ``sklearn.neural_network.BernoulliRBM``
(same constructor and attribute names; ``fit``, ``partial_fit``,
``transform``, ``gibbs``, ``score_samples``) with, in addition, ``k``
(Gibbs steps per update), ``persistent`` (PCD or CD-k), ``n_temperatures``
(parallel-tempering PCD), ``momentum``, ``weight_decay``, ``sample``,
``free_energy``, ``log_partition`` and ``log_likelihood``.

Energy (Bernoulli visible units v, Bernoulli hidden units h):
``E(v, h) = -v.b - h.c - v W^T h`` with ``W = components_`` of shape
``(n_components, n_features)``, ``b = intercept_visible_``,
``c = intercept_hidden_``; free energy
``F(v) = -v.b - sum_j softplus(c_j + (v W^T)_j)``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Union

import numpy as np

from .. import _backend
from .. import random as hr
from .._blas import in_blas_threads
from .._guard import Guarded, check_values, locked
from ._estimates import LogZEstimate
from ._rbm_trainer import Trainer
from ._units import (
    TAG_GIBBS,
    TAG_INIT,
    TAG_SCORE,
    bernoulli_units,
    gaussian_units,
    nonneg_float,
    positive_int,
    seed_from,
    stream_of,
    to_xp,
    xp_of,
)

try:  # scikit-learn is optional: its base classes give clone(), tags, repr
    from sklearn.base import BaseEstimator as _Base
    from sklearn.base import TransformerMixin as _TransformerMixin
    from sklearn.exceptions import NotFittedError
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    import inspect

    class NotFittedError(ValueError, AttributeError):  # type: ignore[no-redef]
        """Raised when a method needs a fitted model."""

    class _Base:  # type: ignore[no-redef]
        """get_params / set_params by introspection of ``__init__``."""

        @classmethod
        def _get_param_names(cls) -> list:
            sig = inspect.signature(cls.__init__)
            return sorted(
                p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD
            )

        def get_params(self, deep: bool = True) -> dict:
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params: Any):
            valid = self._get_param_names()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(f"'{k}': not a parameter of {type(self).__name__}")
                setattr(self, k, v)
            return self

    class _TransformerMixin:  # type: ignore[no-redef]
        def fit_transform(self, X: Any, y: Any = None, **fit_params: Any):
            return self.fit(X, y, **fit_params).transform(X)


__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "bernoulli_units", "gaussian_units", "NotFittedError"]


def _as_2d(X: Any, name: str, dtype: Any, n_features: Optional[int], owner: str, binary: bool = False):
    """X as a C-contiguous 2-D float array of ``dtype`` (numpy or cupy), with
    the checks every method shares; errors name the argument."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"'{name}': sparse input is not supported; pass a dense array (e.g. {name}.toarray())"
        )
    xp = xp_of(X)
    try:
        arr = xp.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"'{name}': cannot be converted to an array of numbers ({exc})") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"'{name}': Complex data not supported")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"'{name}': expected numbers, got dtype {arr.dtype} ({exc})") from None
    if arr.ndim != 2:
        raise ValueError(
            f"'{name}': Expected 2D array, got {arr.ndim}D array of shape {tuple(arr.shape)} instead. "
            "Reshape your data either using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"'{name}': empty batch: 0 samples (shape {tuple(arr.shape)}); need at least one")
    if arr.shape[1] == 0:
        raise ValueError(
            f"'{name}': 0 feature(s) (shape=({arr.shape[0]}, 0)) while a minimum of 1 is required."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"'{name}': X has {arr.shape[1]} features, but {owner} is expecting {n_features} "
            "features as input"
        )
    arr = xp.ascontiguousarray(arr, dtype=dtype)
    if not bool(xp.isfinite(arr).all()):
        raise ValueError(f"'{name}': Input contains NaN or infinity")
    if binary and not bool(((arr == 0) | (arr == 1)).all()):
        raise ValueError(
            f"'{name}': the Bernoulli model's likelihood needs binary data (only 0 and 1 values)"
        )
    return arr


# ---------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------


def _rows(v: Any) -> int:
    return int(np.shape(v)[0]) if np.ndim(v) == 2 else 1


def _gibbs_work(model: Any, rows: Any) -> int:
    """Multiply-adds of one product ``rows x n_visible`` by ``n_visible x
    n_hidden`` of a fitted RBM (0 before it is fitted): what chooses BLAS
    threads (:func:`heatbath.get_blas_threads`)."""
    W = getattr(model, "components_", None)
    return int(rows) * int(W.shape[0]) * int(W.shape[1]) if W is not None else 0


def _checked_update(tr: Any, batch: Any, lr: Any) -> None:
    """One update; a kernel's non-finite input after a diverged earlier update
    becomes the error of :func:`_check_diverged`."""
    try:
        tr.update(batch)
    except ValueError:
        _check_diverged(tr, xp_of(tr.Wa), lr)
        raise


def _check_diverged(tr: Any, xp: Any, lr: Any) -> None:
    """FloatingPointError when the parameters are no longer finite."""
    if not bool(xp.isfinite(tr.Wa).all()):
        raise FloatingPointError(
            f"training diverged: the parameters are no longer finite; lower 'learning_rate' (got {lr!r})"
        )


class _RBMBase(_TransformerMixin, _Base, Guarded):
    """Shared machinery of the Bernoulli and Gaussian-Bernoulli RBMs."""

    _gaussian = False

    # -- parameters ---------------------------------------------------------

    @property
    def _dtype(self) -> np.dtype:
        dt = np.dtype(self.dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"'dtype': expected float32 or float64, got {dt}")
        return dt

    def _check_params(self) -> None:
        positive_int(self.n_components, "n_components")
        positive_int(self.batch_size, "batch_size")
        positive_int(self.n_iter, "n_iter")
        positive_int(self.k, "k")
        positive_int(self.n_temperatures, "n_temperatures")
        lr = nonneg_float(self.learning_rate, "learning_rate")
        if lr == 0:
            raise ValueError("'learning_rate': must be > 0, got 0")
        nonneg_float(self.momentum, "momentum", upper=1.0)
        nonneg_float(self.weight_decay, "weight_decay")
        if self.n_temperatures > 1 and not self.persistent:
            raise ValueError("'n_temperatures': parallel tempering needs persistent=True")
        _ = self._dtype  # raises on an unsupported dtype

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                "arguments "
                "before using this estimator."
            )

    def _X(self, X: Any, name: str = "X", binary: bool = False):
        return _as_2d(X, name, self._dtype, self.n_features_in_, type(self).__name__, binary=binary)

    def _params(self, xp):
        """(W, c, b) as C-contiguous arrays of the model dtype on xp's device."""
        dt = self._dtype
        W = xp.ascontiguousarray(to_xp(self.components_, xp), dtype=dt)
        c = xp.ascontiguousarray(to_xp(self.intercept_hidden_, xp), dtype=dt)
        b = xp.ascontiguousarray(to_xp(self.intercept_visible_, xp), dtype=dt)
        nh, nv = self.n_components, self.n_features_in_
        if W.shape != (nh, nv) or c.shape != (nh,) or b.shape != (nv,):
            raise ValueError(
                f"'components_': expected shapes components_ {(nh, nv)}, intercept_hidden_ {(nh,)}, "
                f"intercept_visible_ {(nv,)}; got {tuple(W.shape)}, {tuple(c.shape)}, {tuple(b.shape)}"
            )
        return W, c, b

    def _ensure_rng(self) -> None:
        if not hasattr(self, "_hb_seed"):
            self._hb_seed = seed_from(self.random_state)
            self._hb_counter = 0

    def _next_stream(self, tag: int) -> int:
        with self._lock:  # samplers built on this model (tempering, AIS) draw from other threads too
            self._hb_counter += 1
            return stream_of(tag, self._hb_counter)

    # -- the interface AIS and tempering use (heatbath.ebm._units.RBMInterface)

    def _visible_sigma(self) -> Optional[np.ndarray]:
        return None

    def _draw_key(self, tag: int) -> "tuple[int, int]":
        self._ensure_rng()
        seed = self._hb_seed
        return seed, self._next_stream(tag)

    def _init_params(self, X, xp) -> None:
        dt = self._dtype
        nv, nh = X.shape[1], self.n_components
        check_values(nh * (nv + 1), "n_components", f"{nh} hidden units on {nv} features")
        if self.persistent:
            check_values(self.batch_size * self.n_temperatures * (nv + nh + 2),
                         ("batch_size", "n_temperatures"),
                         f"{self.n_temperatures} x {self.batch_size} persistent chains")
        self.n_features_in_ = nv
        self._hb_seed = seed_from(self.random_state)
        self._hb_counter = 0
        W = hr.normal((nh, nv), self._hb_seed, stream=stream_of(TAG_INIT, 0), dtype=dt)
        W *= dt.type(0.01)
        self.components_ = xp.asarray(W)
        self.intercept_hidden_ = xp.zeros(nh, dtype=dt)
        self.intercept_visible_ = self._initial_visible_bias(X, xp)
        self._n_features_out = nh
        if self.persistent:
            self.h_samples_ = xp.zeros((self.batch_size, nh), dtype=dt)
        self._velocity = None
        self.__dict__.pop("_pt_state", None)

    def _initial_visible_bias(self, X, xp):
        return xp.zeros(X.shape[1], dtype=self._dtype)

    # -- fitting ------------------------------------------------------------

    @in_blas_threads
    @locked
    def fit(self, X: Any, y: Any = None, *, callback: Optional[Callable[[int, "_RBMBase"], None]] = None):
        """Fit the model to X by ``n_iter`` passes of minibatch CD-k, PCD or
        PT-PCD.

        Parameters
        ----------
        X : array of shape (n_samples, n_features), numpy (CPU) or cupy (GPU)
        y : ignored
        callback : callable(epoch, model), optional
            Called after each pass over the data (e.g. a progress bar).

        Returns
        -------
        self
        """
        self._check_params()
        X = _as_2d(X, "X", self._dtype, None, type(self).__name__)
        xp = xp_of(X)
        self.n_features_in_ = X.shape[1]
        X = self._prepare_data(X)
        self._init_params(X, xp)
        n = X.shape[0]
        bs = min(self.batch_size, n)
        n_batches = -(-n // bs)
        # scikit-learn's even slices: batch sizes differ by at most one
        edges = [(i * n) // n_batches for i in range(n_batches + 1)]
        Xa = xp.ones((n, X.shape[1] + 1), dtype=self._dtype)
        Xa[:, :-1] = X
        tr = Trainer(self, xp, max(edges[i + 1] - edges[i] for i in range(n_batches)))
        for epoch in range(self.n_iter):
            try:
                for i in range(n_batches):
                    _checked_update(tr, Xa[edges[i] : edges[i + 1]], self.learning_rate)
            except KeyboardInterrupt:
                tr.write_back()  # the parameters of the updates done (Ctrl-C)
                raise
            _check_diverged(tr, xp, self.learning_rate)
            if self.verbose or callback is not None:
                tr.write_back()
                if self.verbose:
                    print(
                        f"[{type(self).__name__}] Iteration {epoch + 1}, pseudo-likelihood = "
                        f"{float(self.score_samples(X).mean()):.2f}",
                        file=sys.stdout,
                    )
                if callback is not None:
                    callback(epoch, self)
        tr.write_back()
        return self

    @in_blas_threads
    @locked
    def partial_fit(self, X: Any, y: Any = None):
        """One update on the batch X (scikit-learn's semantics); the first
        call initializes the model.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored
        """
        self._check_params()
        first = not hasattr(self, "components_")
        X = _as_2d(X, "X", self._dtype, None if first else self.n_features_in_, type(self).__name__)
        xp = xp_of(X)
        if first:
            self.n_features_in_ = X.shape[1]
        X = self._prepare_data(X)
        if first:
            self._init_params(X, xp)
        self._ensure_rng()
        Xa = xp.ones((X.shape[0], X.shape[1] + 1), dtype=self._dtype)
        Xa[:, :-1] = X
        tr = Trainer(self, xp, X.shape[0])
        _checked_update(tr, Xa, self.learning_rate)
        _check_diverged(tr, xp, self.learning_rate)
        tr.write_back()
        return self

    def _prepare_data(self, X):
        return X

    # -- inference ----------------------------------------------------------

    def transform(self, X: Any):
        """Mean hidden activations p(h_j = 1 | v).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)

        Returns
        -------
        array of shape (n_samples, n_components), the model dtype (numpy or cupy as X)
        """
        self._check_fitted()
        X = self._X(X)
        xp = xp_of(X)
        W, c, _ = self._params(xp)
        out = xp.matmul(self._prepare_data(X), W.T)
        bernoulli_units(out, c, None, out, seed=0, stream=0)
        return out

    def _gibbs_buffers(self, xp, n: int):
        dt = self._dtype
        nv, nh = self.n_features_in_, self.n_components
        return (xp.empty((n, nh), dtype=dt), xp.empty((n, nh), dtype=dt), xp.empty((n, nv), dtype=dt))

    def _gibbs_loop(self, V, k: int, W, c, b) -> Any:
        """k sweeps v -> h -> v in place on V (the model's visible scaling);
        returns the last hidden sample. No allocation inside the loop."""
        xp = xp_of(V)
        H, pre_h, pre_v = self._gibbs_buffers(xp, V.shape[0])
        Wt = W.T
        for _ in range(k):
            xp.matmul(V, Wt, out=pre_h)
            bernoulli_units(pre_h, c, H, seed=self._hb_seed, stream=self._next_stream(TAG_GIBBS))
            xp.matmul(H, W, out=pre_v)
            bernoulli_units(pre_v, b, V, seed=self._hb_seed, stream=self._next_stream(TAG_GIBBS))
        return H

    @in_blas_threads(work=lambda self, v, *a, **kw: _gibbs_work(self, _rows(v)))
    @locked
    def gibbs(self, v: Any, k: int = 1):
        """k Gibbs sweeps (v -> h -> v) from v.

        Parameters
        ----------
        v : array of shape (n_samples, n_features)
        k : int
            Number of sweeps (scikit-learn's ``gibbs`` is k = 1).

        Returns
        -------
        array of shape (n_samples, n_features): the visible sample after k sweeps.
        """
        self._check_fitted()
        k = positive_int(k, "k")
        V = self._X(v, "v").copy()
        self._ensure_rng()
        xp = xp_of(V)
        W, c, b = self._params(xp)
        V = self._prepare_data(V)
        self._gibbs_loop(V, k, W, c, b)
        return self._unprepare(V)

    def _unprepare(self, V):
        return V

    @in_blas_threads(work=lambda self, n_samples=1, *a, **kw: _gibbs_work(self, n_samples))
    @locked
    def sample(self, n_samples: int = 1, k: int = 1000, *, device: Optional[str] = None):
        """Draw n_samples visible vectors by k Gibbs sweeps from independent
        chains started at the visible biases' base-rate distribution.

        Parameters
        ----------
        n_samples : int
        k : int
            Sweeps per chain (burn-in).
        device : {"cpu", "cuda"}, optional
            Default: where the parameters are.

        Returns
        -------
        array of shape (n_samples, n_features), the model dtype
        """
        self._check_fitted()
        n = positive_int(n_samples, "n_samples")
        k = positive_int(k, "k")
        check_values(n * (self.n_features_in_ + self.n_components + 2), "n_samples", f"{n} chains")
        if device not in (None, "cpu", "cuda"):
            raise ValueError(f"'device': expected 'cpu' or 'cuda', got {device!r}")
        xp = (
            _backend.cupy_module()
            if device == "cuda" or (device is None and _backend.is_cupy(self.components_))
            else np
        )
        self._ensure_rng()
        W, c, b = self._params(xp)
        V = self._initial_chains(xp, n, b)
        self._gibbs_loop(V, k, W, c, b)
        return self._unprepare(V)

    def _initial_chains(self, xp, n: int, b):
        dt = self._dtype
        V = xp.empty((n, self.n_features_in_), dtype=dt)
        x = xp.zeros((n, self.n_features_in_), dtype=dt)
        bernoulli_units(x, b, V, seed=self._hb_seed, stream=self._next_stream(TAG_GIBBS))
        return V

    def free_energy(self, v: Any):
        """Free energy F(v) = -log sum_h exp(-E(v, h)), in float64.

        Parameters
        ----------
        v : array of shape (n_samples, n_features)

        Returns
        -------
        float64 array of shape (n_samples,)
        """
        self._check_fitted()
        V = self._X(v, "v")
        xp = xp_of(V)
        W, c, b = (a.astype(np.float64) for a in self._params(xp))
        return self._free_energy64(V.astype(np.float64), W, c, b)

    def _free_energy64(self, V, W, c, b):
        xp = xp_of(V)
        return -(V @ b) - xp.logaddexp(0, V @ W.T + c).sum(axis=1)

    @in_blas_threads
    @locked
    def log_partition(self, method: str = "ais", **kwargs: Any) -> LogZEstimate:
        """log Z of the model.

        Parameters
        ----------
        method : {"ais", "exact", "raise"}
            "exact": enumeration of the smaller layer (at most 24 units),
            summing the other analytically. "ais": annealed importance sampling
            from a base-rate model (see :func:`heatbath.ebm.ais.rbm_ais`; keyword
            arguments ``n_runs``, ``betas``, ``data``, ``seed``). "raise":
            reverse AIS, a stochastic upper bound (:func:`heatbath.ebm.ais.rbm_raise`).

        Returns
        -------
        LogZEstimate
        """
        from . import ais as _ais

        self._check_fitted()
        if method == "exact":
            return _ais.rbm_exact_log_z(self, **kwargs)
        if method == "ais":
            return _ais.rbm_ais(self, **kwargs)
        if method == "raise":
            return _ais.rbm_raise(self, **kwargs)
        raise ValueError(f"'method': expected 'ais', 'exact' or 'raise', got {method!r}")

    @in_blas_threads
    @locked
    def log_likelihood(
        self, X: Any, log_z: Union[None, float, LogZEstimate] = None, method: str = "ais", **kwargs: Any
    ):
        """Per-sample log-likelihood log p(v) = -F(v) - log Z, in nats.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Binary for the Bernoulli model.
        log_z : float or LogZEstimate, optional
            A log partition function to reuse; otherwise ``log_partition(method, **kwargs)``.

        Returns
        -------
        float64 array of shape (n_samples,) (numpy or cupy as X)
        """
        self._check_fitted()
        X = self._X(X, binary=not self._gaussian)
        if log_z is None:
            log_z = self.log_partition(method, **kwargs)
        return -self.free_energy(X) - float(log_z)


class BernoulliRBM(_RBMBase):
    """Bernoulli restricted Boltzmann machine (binary visible and hidden units),
    a faster, measurable drop-in for ``sklearn.neural_network.BernoulliRBM``.

    Parameters
    ----------
    n_components : int, default 256
        Number of hidden units.
    learning_rate : float, default 0.1
    batch_size : int, default 10
        Examples per minibatch; also the number of persistent chains.
    n_iter : int, default 10
        Passes over the training data.
    verbose : int, default 0
        Print the pseudo-likelihood after each pass.
    random_state : int, numpy Generator / RandomState or None
        Seeds the initial weights and every Philox stream of the model.
    k : int, default 1
        Gibbs sweeps per update.
    persistent : bool, default True
        Persistent contrastive divergence (PCD, scikit-learn's algorithm);
        False gives CD-k (chains restarted at the data).
    n_temperatures : int, default 1
        More than 1: PT-PCD, the persistent chains are parallel-tempering
        replicas at that many inverse temperatures in (0, 1] (geometric).
    momentum : float in [0, 1), default 0
    weight_decay : float, default 0
        L2 penalty on the weights (not the biases).
    dtype : {"float32", "float64"}, default "float32"
        Precision of the parameters and of the Gibbs chains.

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
    intercept_hidden_ : array of shape (n_components,)
    intercept_visible_ : array of shape (n_features,)
    h_samples_ : array of shape (batch_size, n_components)
        Hidden states of the persistent chains.
    n_features_in_ : int
    """

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: Any = None,
        k: int = 1,
        persistent: bool = True,
        n_temperatures: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        dtype: str = "float32",
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.persistent = persistent
        self.n_temperatures = n_temperatures
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name]
        return tags

    @in_blas_threads
    def score_samples(self, X: Any):
        """Pseudo-log-likelihood as scikit-learn computes it: for each sample,
        ``n_features * log sigmoid(F(v~) - F(v))`` with v~ the sample with one
        random feature flipped (drawn from ``random_state``).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)

        Returns
        -------
        float64 array of shape (n_samples,)
        """
        self._check_fitted()
        X = self._X(X)
        xp = xp_of(X)
        n, nv = X.shape
        seed = seed_from(self.random_state)
        idx = xp.asarray(hr.integers(0, nv, shape=n, seed=seed, stream=stream_of(TAG_SCORE, 0)))
        rows = xp.arange(n)
        Xc = X.copy()
        Xc[rows, idx] = 1 - Xc[rows, idx]
        fe = self.free_energy(X)
        fe_ = self.free_energy(Xc)
        return -nv * xp.logaddexp(0, -(fe_ - fe))

    def _initial_visible_bias(self, X, xp):
        # log-odds of the feature means (Hinton's practical guide), shrunk
        # towards 1/2 so that constant features stay finite
        n = X.shape[0]
        p = (X.sum(axis=0, dtype=np.float64) + 1.0) / (n + 2.0)
        p = xp.clip(p, 1e-3, 1 - 1e-3)
        return xp.log(p / (1 - p)).astype(self._dtype)


class GaussianBernoulliRBM(_RBMBase):
    """RBM with Gaussian visible units of fixed standard deviation ``sigma``
    and Bernoulli hidden units, for real-valued data (standardize it first).

    Energy ``E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - (v / sigma) W^T h``;
    ``p(v | h) = N(b + sigma (W^T h), sigma^2)``,
    ``p(h_j = 1 | v) = sigmoid(c_j + (v / sigma) . W_j)``.

    Parameters are those of :class:`BernoulliRBM` (default learning rate 0.01)
    plus ``sigma`` (float or array of shape (n_features,), default 1).
    ``log_partition(method="exact")`` enumerates the hidden layer (at most 24
    units) and integrates the visible one in closed form.
    """

    _gaussian = True

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.01,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: Any = None,
        k: int = 1,
        persistent: bool = True,
        n_temperatures: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        sigma: Any = 1.0,
        dtype: str = "float32",
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.persistent = persistent
        self.n_temperatures = n_temperatures
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sigma = sigma
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name]
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        if self.n_temperatures > 1:
            raise ValueError("'n_temperatures': parallel tempering is implemented for BernoulliRBM only")

    def _visible_sigma(self) -> Optional[np.ndarray]:
        return self._sigma_vec()

    def _sigma_vec(self) -> np.ndarray:
        s = np.asarray(self.sigma.get() if _backend.is_cupy(self.sigma) else self.sigma, dtype=np.float64)
        nv = self.n_features_in_
        if s.ndim == 0:
            s = np.full(nv, float(s))
        if s.shape != (nv,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(
                f"'sigma': expected a positive float or an array of shape ({nv},) of positive values"
            )
        return s

    def _initial_visible_bias(self, X, xp):
        return (X.mean(axis=0, dtype=np.float64) * xp.asarray(self._sigma_vec())).astype(self._dtype)

    def _prepare_data(self, X):
        """Visible states are held as v / sigma (that feeds the GEMMs)."""
        xp = xp_of(X)
        return X / xp.asarray(self._sigma_vec(), dtype=self._dtype)

    def _unprepare(self, V):
        xp = xp_of(V)
        return V * xp.asarray(self._sigma_vec(), dtype=self._dtype)

    def _gibbs_loop(self, V, k: int, W, c, b) -> Any:
        xp = xp_of(V)
        H, pre_h, pre_v = self._gibbs_buffers(xp, V.shape[0])
        b_s = xp.ascontiguousarray(b / xp.asarray(self._sigma_vec(), dtype=self._dtype))
        Wt = W.T
        for _ in range(k):
            xp.matmul(V, Wt, out=pre_h)
            bernoulli_units(pre_h, c, H, seed=self._hb_seed, stream=self._next_stream(TAG_GIBBS))
            xp.matmul(H, W, out=pre_v)
            gaussian_units(pre_v, b_s, 1.0, V, seed=self._hb_seed, stream=self._next_stream(TAG_GIBBS))
        return H

    def _initial_chains(self, xp, n: int, b):
        dt = self._dtype
        V = xp.empty((n, self.n_features_in_), dtype=dt)
        x = xp.zeros((n, self.n_features_in_), dtype=dt)
        b_s = xp.ascontiguousarray(b / xp.asarray(self._sigma_vec(), dtype=dt))
        gaussian_units(x, b_s, 1.0, V, seed=self._hb_seed, stream=self._next_stream(TAG_GIBBS))
        return V

    def _free_energy64(self, V, W, c, b):
        xp = xp_of(V)
        s = xp.asarray(self._sigma_vec())
        return (((V - b) / s) ** 2).sum(axis=1) / 2 - xp.logaddexp(0, (V / s) @ W.T + c).sum(axis=1)
