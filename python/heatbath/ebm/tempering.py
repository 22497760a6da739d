"""Parallel tempering (replica exchange) for Bernoulli RBMs.

Replicas of ``n_chains`` chains run at inverse temperatures
``1 = beta_0 > beta_1 > ... > beta_{R-1} >= 0`` of the path

    p_beta(v, h)  ∝  exp((1 - beta) v.a - beta E(v, h)),

where ``a`` are base-rate visible biases (zero by default: plain tempering
towards the uniform distribution). All ``R * n_chains`` rows are swept by the
same two GEMMs and two fused kernels (each row carries its own inverse
temperature), then neighbouring temperatures propose to exchange
configurations with the Metropolis probability
``min(1, exp((beta_i - beta_j) (phi(x_j) - phi(x_i))))``,
``phi(v, h) = -E(v, h) - v.a``. Exchanges swap the temperatures of two rows,
not their states, so nothing is copied. Used for sampling and for PT-PCD
training (``BernoulliRBM(n_temperatures=R)``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional

import numpy as np

from .. import _backend
from .. import random as hr
from .._blas import in_blas_threads
from .._guard import Guarded, check_values, locked
from ._units import TAG_PT, RBMInterface, bernoulli_units, positive_int, to_xp

__all__ = ["ParallelTempering", "geometric_betas"]


def geometric_betas(n_temperatures: int, beta_min: float = 0.1) -> np.ndarray:
    """``n_temperatures`` inverse temperatures from 1 down to ``beta_min``,
    geometrically spaced (float64, decreasing)."""
    n = positive_int(n_temperatures, "n_temperatures")
    check_values(n, "n_temperatures", "the ladder of temperatures")
    if not 0 < beta_min <= 1:
        raise ValueError(f"'beta_min': must lie in (0, 1], got {beta_min}")
    if n == 1:
        return np.ones(1)
    return beta_min ** (np.arange(n) / (n - 1))


class ParallelTempering(Guarded):
    """Replica-exchange Gibbs sampler for a :class:`~heatbath.ebm.BernoulliRBM`.

    Parameters
    ----------
    rbm : BernoulliRBM
        A fitted model (its parameters are read once, or live from a trainer).
    n_chains : int
        Independent chains per temperature.
    n_temperatures : int, optional
        Number of temperatures (geometric from 1 to ``beta_min``) when
        ``betas`` is not given.
    betas : array of shape (R,), optional
        Decreasing inverse temperatures starting at 1.
    base : array of shape (n_features,), optional
        Base-rate visible biases ``a`` of the path (default 0).
    beta_min : float
        Lowest inverse temperature of the default ladder.
    device : {"cpu", "cuda"}, optional
        Where the chains live (default: where the parameters are).

    Attributes
    ----------
    betas : float64 ndarray of shape (R,)
    n_swaps_proposed, n_swaps_accepted : ndarray of shape (R - 1,)
        Exchange statistics between temperature k and k + 1.
    """

    def __init__(
        self,
        rbm: RBMInterface,
        n_chains: int = 100,
        n_temperatures: Optional[int] = None,
        betas: Any = None,
        base: Any = None,
        beta_min: float = 0.1,
        device: Optional[str] = None,
        _params: Any = None,
    ):
        self.rbm = rbm
        C = positive_int(n_chains, "n_chains")
        if betas is None:
            betas = geometric_betas(10 if n_temperatures is None else n_temperatures, beta_min)
        betas = np.asarray(betas, dtype=np.float64).ravel()
        if betas.size < 1 or betas[0] != 1 or np.any(np.diff(betas) >= 0) or betas[-1] < 0:
            raise ValueError("'betas': expected a decreasing sequence in [0, 1] that starts at 1")
        self.betas = betas
        R = betas.size
        if _params is not None:
            self._src = _params
            xp = _params.xp
        else:
            rbm._check_fitted()
            if device not in (None, "cpu", "cuda"):
                raise ValueError(f"'device': expected 'cpu' or 'cuda', got {device!r}")
            on_gpu = device == "cuda" or (device is None and _backend.is_cupy(rbm.components_))
            xp = _backend.cupy_module() if on_gpu else np
            W, c, b = rbm._params(xp)
            nv, nh = rbm.n_features_in_, rbm.n_components
            Wa = xp.zeros((nv + 1, nh + 1), dtype=W.dtype)
            Wa[:nv, :nh] = W.T
            Wa[nv, :nh] = c
            Wa[:nv, nh] = b
            self._src = SimpleNamespace(Wa=Wa, nv=nv, nh=nh, xp=xp)
        self.xp = xp
        nv, nh = self._src.nv, self._src.nh
        dt = self._src.Wa.dtype
        self.R, self.C = R, C
        n = R * C
        check_values(n * (nv + nh + 2), ("n_chains", "n_temperatures"), f"{C} chains at {R} temperatures")
        self.V = xp.ones((n, nv + 1), dtype=dt)
        self.H = xp.ones((n, nh + 1), dtype=dt)
        self.pre_h = xp.empty((n, nh), dtype=dt)
        self.pre_v = xp.empty((n, nv), dtype=dt)
        self.zero_h = xp.zeros(nh, dtype=dt)
        self.zero_v = xp.zeros(nv, dtype=dt)
        self.base = (
            xp.zeros(nv, dtype=dt) if base is None else xp.ascontiguousarray(to_xp(base, xp), dtype=dt)
        )
        if self.base.shape != (nv,):
            raise ValueError(f"'base': expected shape ({nv},), got {tuple(self.base.shape)}")
        # row r = t * C + c starts at temperature t; rows_at[t, c] is the row at temperature t
        self.rows_at = np.arange(n).reshape(R, C)
        self.scale_host = np.repeat(betas, C)
        self.scale = xp.asarray(self.scale_host.astype(dt))
        self.n_swaps_proposed = np.zeros(max(R - 1, 0), dtype=np.int64)
        self.n_swaps_accepted = np.zeros(max(R - 1, 0), dtype=np.int64)
        self._sweeps = 0
        # start every replica from the base-rate distribution
        x = xp.zeros((n, nv), dtype=dt)
        bernoulli_units(
            x,
            self.zero_v,
            self.V[:, :nv],
            **self._key(),
            scale=0.0,
            base=self.base,
        )

    def _key(self) -> dict:
        seed, stream = self.rbm._draw_key(TAG_PT)
        return {"seed": seed, "stream": stream}

    @locked
    def sweep(self) -> None:
        """One Gibbs sweep of every replica, then one round of exchanges
        (even pairs on even sweeps, odd pairs on odd sweeps)."""
        src, xp = self._src, self.xp
        nv, nh = src.nv, src.nh
        xp.matmul(self.V, src.Wa[:, :nh], out=self.pre_h)
        bernoulli_units(
            self.pre_h,
            self.zero_h,
            self.H[:, :nh],
            **self._key(),
            scale=self.scale,
        )
        xp.matmul(self.H, src.Wa[:nv, :].T, out=self.pre_v)
        bernoulli_units(
            self.pre_v,
            self.zero_v,
            self.V[:, :nv],
            **self._key(),
            scale=self.scale,
            base=self.base,
        )
        if self.R > 1:
            self._exchange(self._sweeps % 2)
        self._sweeps += 1

    def _exchange(self, parity: int) -> None:
        src, xp, rbm = self._src, self.xp, self.rbm
        nv, nh = src.nv, src.nh
        V = self.V[:, :nv]
        # phi(v, h) = v.(W^T h + b) + c.h - v.a  (pre_v holds W^T h + b of this sweep)
        phi = (V * self.pre_v).sum(axis=1) + self.H[:, :nh] @ src.Wa[nv, :nh] - V @ self.base
        phi = to_xp(phi, np).astype(np.float64)
        t = np.arange(parity, self.R - 1, 2)
        if t.size == 0:
            return
        i = self.rows_at[t]  # (P, C)
        j = self.rows_at[t + 1]
        d = (self.betas[t] - self.betas[t + 1])[:, None] * (phi[j] - phi[i])
        seed, stream = rbm._draw_key(TAG_PT)
        u = hr.uniform(i.size, seed, stream=stream, dtype="float64").reshape(i.shape)
        acc = np.log(u) < d
        self.n_swaps_proposed[t] += i.shape[1]
        self.n_swaps_accepted[t] += acc.sum(axis=1)
        new_i = np.where(acc, j, i)
        new_j = np.where(acc, i, j)
        self.rows_at[t] = new_i
        self.rows_at[t + 1] = new_j
        self.scale_host[self.rows_at.ravel()] = np.repeat(self.betas, self.C)
        self.scale[...] = xp.asarray(self.scale_host.astype(self.scale.dtype))

    @in_blas_threads
    @locked
    def run(self, n_sweeps: int) -> "ParallelTempering":
        """``n_sweeps`` sweeps (each with an exchange round)."""
        for _ in range(positive_int(n_sweeps, "n_sweeps")):
            self.sweep()
        return self

    @locked
    def take_cold(self, out: Any) -> Any:
        """Copy the visible states at beta = 1 into ``out`` (shape (n_chains, n_features))."""
        rows = self.rows_at[0]
        if self.xp is not np:
            rows = self.xp.asarray(rows)
        self.xp.take(self.V[:, : self._src.nv], rows, axis=0, out=out)
        return out

    @locked
    def samples(self) -> Any:
        """The visible states at beta = 1: array of shape (n_chains, n_features)."""
        out = self.xp.empty((self.C, self._src.nv), dtype=self.V.dtype)
        return self.take_cold(out)

    @property
    def acceptance(self) -> np.ndarray:
        """Exchange acceptance rate between temperatures k and k + 1, shape (R - 1,)."""
        return self.n_swaps_accepted / np.maximum(self.n_swaps_proposed, 1)
