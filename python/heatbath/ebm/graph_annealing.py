"""Annealing over beta for the graph and lattice models: annealed importance
sampling of log Z and parallel tempering with replica swaps.

Both work with :class:`~heatbath.ebm.SparseIsing`, :class:`~heatbath.ebm.SparsePotts`
and :class:`~heatbath.ebm.IsingLattice`: models with one inverse temperature
per chain, a ``sweep(n)`` that leaves ``p_beta(s) ~ exp(-beta E(s))``
invariant for each chain, and the chains' energies computed by a kernel (the
states are not copied back). AIS uses the generic estimator of
:mod:`heatbath.ebm.ais` and returns a :class:`~heatbath.ebm.LogZEstimate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import random as hr
from .._guard import MAX_STEPS, MAX_VALUES, as_float, as_float_array, as_int
from ._estimates import LogZEstimate
from .ais import ais, as_betas
from .lattice import IsingLattice

__all__ = ["graph_ais", "graph_parallel_tempering", "TemperingResult", "exact_log_z"]


def _total_energy(model: Any) -> np.ndarray:
    if isinstance(model, IsingLattice):
        return model.energy() * model.n_sites
    return model.energy()


def _n_free_and_states(model: Any) -> tuple[int, int]:
    if isinstance(model, IsingLattice):
        return model.n_sites, 2
    return int((~model.clamped).sum()), model.K


def _randomize(model: Any, stream: int) -> None:
    """Exact samples of p_0 (uniform over the free nodes; clamped nodes kept),
    chain c drawn from the counters of chain ``chain_offset + c`` of the run."""
    c0 = int(getattr(model, "chain_offset", 0))
    if isinstance(model, IsingLattice):
        shape = (model.n_chains,) + model.shape
        bits = hr.integers(0, 2, shape=shape, seed=model.seed, offset=c0 * model.n_sites, stream=stream)
        model.spins = (2 * bits - 1).astype(np.int8)
        return
    s = model.state
    draw = hr.integers(0, model.K, shape=s.shape, seed=model.seed, offset=c0 * s.shape[1], stream=stream)
    if not model._potts:
        draw = 2 * draw - 1
    free = ~model.clamped
    s[:, free] = draw[:, free]
    model.state = s


def graph_ais(
    model: Any,
    betas: Any = 1000,
    sweeps_per_step: int = 1,
    beta: Optional[float] = None,
    stream: int = (1 << 62) + 17,
) -> LogZEstimate:
    """Annealed importance sampling of log Z(beta) of a graph or lattice model.

    The path runs from beta = 0 (uniform over the free nodes, log Z_0 = n_free
    log K) to ``beta`` along ``beta * betas``; every chain of the model is one
    AIS run. Clamped nodes stay clamped: the estimate is then log of the sum
    over the free nodes (a conditional partition function).

    Parameters
    ----------
    model : SparseIsing, SparsePotts or IsingLattice
        Its states are overwritten; its betas are restored at the end.
    betas : int or array_like
        Number of temperatures (linear from 0 to 1) or the path itself
        (non-decreasing, from 0 to 1).
    sweeps_per_step : int
        Gibbs sweeps at each intermediate temperature.
    beta : float, optional
        Target inverse temperature (default: the model's chain 0 beta).

    Returns
    -------
    LogZEstimate (method "ais") with one log weight per chain.
    """
    path = as_betas(betas)  # a count or a non-decreasing path from 0 to 1 (NaN refused)
    sweeps_per_step = as_int(sweeps_per_step, "sweeps_per_step", 1, MAX_STEPS)
    stream = hr._as_u64(stream, "stream")
    old = model.beta
    target = float(old[0]) if beta is None else as_float(beta, "beta")
    if not np.isfinite(target) or abs(target) > np.finfo(np.float32).max:
        raise ValueError(f"'beta': must be finite (in float32), got {target}")
    n_free, k = _n_free_and_states(model)
    _randomize(model, stream)

    def log_ratio(m: Any, b0: float, b1: float) -> np.ndarray:
        return -(b1 - b0) * target * _total_energy(m)

    def transition(m: Any, b: float) -> Any:
        m.beta = b * target
        m.sweep(int(sweeps_per_step))
        return m

    try:
        return ais(model, path, transition, n_free * float(np.log(k)), log_ratio=log_ratio)
    finally:
        model.beta = old


def exact_log_z(model: Any, beta: Optional[float] = None) -> LogZEstimate:
    """log Z by enumeration of the free nodes (sparse models, <= 20 free nodes)."""
    _, _, log_z = model.enumerate_log_probs(beta)
    n = int((~model.clamped).sum())
    return LogZEstimate(log_z, 0.0, float(model.K**n), "exact")


@dataclass
class TemperingResult:
    """What :func:`graph_parallel_tempering` recorded.

    Attributes
    ----------
    energy : ndarray of shape (n_records, n_replicas), float64
        Energy of the state at the target (largest) beta of each replica set.
    states : ndarray of shape (n_records, n_replicas, ...) or None
        States at the target beta (``keep_states=True``).
    acceptance : ndarray of shape (n_temperatures - 1,), float64
        Swap acceptance rate of each adjacent pair.
    betas : ndarray of shape (n_temperatures,)
    """

    energy: np.ndarray
    states: Optional[np.ndarray]
    acceptance: np.ndarray
    betas: np.ndarray


def graph_parallel_tempering(
    model: Any,
    betas: Any,
    n_samples: int,
    warmup: int = 0,
    thin: int = 1,
    keep_states: bool = False,
    stream: int = (1 << 62) + 29,
) -> TemperingResult:
    """Parallel tempering (replica exchange) with the model's chains.

    The model's ``n_chains`` must be ``n_replicas * len(betas)``: each of the
    ``n_replicas`` independent replica sets has one chain at every beta. After
    every sweep, adjacent temperatures (even pairs, then odd pairs, in turn)
    propose to swap their states with probability
    ``min(1, exp((beta_i - beta_j)(E_i - E_j)))``; the swap exchanges the
    chains' betas, so no state moves. Swap decisions use Philox uniforms of
    the model's seed.

    Parameters
    ----------
    betas : array_like of shape (n_temperatures,)
        Increasing inverse temperatures; the last is the target.
    n_samples, warmup, thin : int
        Records after ``warmup`` sweeps, ``thin`` sweeps apart.
    """
    pt = _Tempering(betas, model.n_chains)
    n_samples = as_int(n_samples, "n_samples", 1, MAX_STEPS)
    warmup = as_int(warmup, "warmup", 0, MAX_STEPS)
    thin = as_int(thin, "thin", 1, MAX_STEPS)
    nodes = model.n_sites if isinstance(model, IsingLattice) else model.n_nodes
    if n_samples * model.n_chains * (1 + (nodes if keep_states else 0)) > MAX_VALUES:
        raise ValueError(f"'n_samples': {n_samples} records would hold more than 2**40 values")
    stream = hr._as_u64(stream, "stream")
    model.beta = pt.beta_of
    E_rec, S_rec = [], []
    for t in range(pt.total_rounds(warmup, n_samples, thin)):
        model.sweep(1)
        E = _total_energy(model)
        if pt.swap(t, E, model.seed, stream + model.sweeps_done):
            model.beta = pt.beta_of
        top = pt.recorded(t, warmup, thin)
        if top is not None:
            E_rec.append(E[top])
            if keep_states:
                st = model.spins if isinstance(model, IsingLattice) else model.state
                S_rec.append(st[top])
    return pt.result(E_rec, S_rec if keep_states else None)


class _Tempering:
    """The bookkeeping of parallel tempering, shared by
    :func:`graph_parallel_tempering` and
    :func:`heatbath.distributed.parallel_tempering`: which chain sits at which
    temperature, the swap decisions from the chains' energies, the
    acceptance counts. Chain ``t * R + r`` starts at temperature ``t`` of
    replica set ``r``."""

    def __init__(self, betas: Any, n_chains: int) -> None:
        b = as_float_array(betas, "betas").ravel()
        T = b.size
        if T < 2 or not np.all(np.diff(b) > 0) or not np.all(np.abs(b) <= np.finfo(np.float32).max):
            raise ValueError("'betas': expected at least 2 increasing inverse temperatures (finite, in "
                             "float32)")
        C = int(n_chains)
        if C % T:
            raise ValueError(f"'model': n_chains ({C}) must be a multiple of len(betas) ({T})")
        self.b, self.T, self.R = b, T, C // T
        self.chain_at = np.arange(C).reshape(T, self.R)  # chain_at[t, r]: the chain at temperature t of set r
        self.beta_of = np.empty(C)
        self.beta_of[self.chain_at] = b[:, None]
        self.tries = np.zeros(T - 1)
        self.accepted = np.zeros(T - 1)

    @staticmethod
    def total_rounds(warmup: int, n_samples: int, thin: int) -> int:
        return int(warmup) + int(n_samples) * int(thin)

    def swap(self, t: int, E: np.ndarray, seed: int, stream: int) -> bool:
        """After sweep ``t``: adjacent temperatures (even pairs, then odd pairs,
        in turn) propose to swap with probability
        ``min(1, exp((beta_i - beta_j)(E_i - E_j)))``, from Philox uniforms of
        (seed, stream). Updates ``beta_of``; returns whether pairs were tried."""
        b, R, T = self.b, self.R, self.T
        pairs = np.arange(t % 2, T - 1, 2)
        if not pairs.size:
            return False
        u = hr.uniform((pairs.size, R), seed, offset=0, dtype="float64", stream=stream)
        a = self.chain_at[pairs]
        c = self.chain_at[pairs + 1]
        log_acc = (b[pairs][:, None] - b[pairs + 1][:, None]) * (E[a] - E[c])
        acc = np.log(u) < np.minimum(log_acc, 0.0)
        self.tries[pairs] += R
        self.accepted[pairs] += acc.sum(axis=1)
        self.chain_at[pairs] = np.where(acc, c, a)
        self.chain_at[pairs + 1] = np.where(acc, a, c)
        self.beta_of[self.chain_at] = b[:, None]
        return True

    def recorded(self, t: int, warmup: int, thin: int) -> Optional[np.ndarray]:
        """The chains at the target beta when round ``t`` is recorded, else None."""
        if t >= warmup and (t - int(warmup) + 1) % int(thin) == 0:
            return self.chain_at[-1].copy()
        return None

    def result(self, E_rec: list, S_rec: Optional[list]) -> "TemperingResult":
        return TemperingResult(
            np.array(E_rec), None if S_rec is None else np.array(S_rec),
            self.accepted / np.maximum(self.tries, 1), self.b,
        )
