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
from ._estimates import LogZEstimate
from .ais import ais, linear_betas
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
    """Exact samples of p_0 (uniform over the free nodes; clamped nodes kept)."""
    if isinstance(model, IsingLattice):
        bits = hr.integers(0, 2, shape=(model.n_chains,) + model.shape, seed=model.seed, stream=stream)
        model.spins = (2 * bits - 1).astype(np.int8)
        return
    s = model.state
    draw = hr.integers(0, model.K, shape=s.shape, seed=model.seed, stream=stream)
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
    path = linear_betas(int(betas)) if np.ndim(betas) == 0 else np.asarray(betas, dtype=np.float64).ravel()
    if path.size < 2 or path[0] != 0.0 or path[-1] != 1.0 or np.any(np.diff(path) < 0):
        raise ValueError("'betas': expected a count or a non-decreasing path from 0 to 1")
    if int(sweeps_per_step) < 1:
        raise ValueError(f"'sweeps_per_step': must be >= 1, got {sweeps_per_step}")
    old = model.beta
    target = float(old[0]) if beta is None else float(beta)
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
    b = np.asarray(betas, dtype=np.float64).ravel()
    T = b.size
    if T < 2 or np.any(np.diff(b) <= 0):
        raise ValueError("'betas': expected at least 2 increasing inverse temperatures")
    C = model.n_chains
    if C % T:
        raise ValueError(f"'model': n_chains ({C}) must be a multiple of len(betas) ({T})")
    R = C // T
    chain_at = np.arange(C).reshape(T, R)  # chain_at[t, r]: the chain at temperature t of replica set r
    beta_of = np.empty(C)
    beta_of[chain_at] = b[:, None]
    model.beta = beta_of
    tries = np.zeros(T - 1)
    accepted = np.zeros(T - 1)
    E_rec, S_rec = [], []
    total = int(warmup) + int(n_samples) * int(thin)
    for t in range(total):
        model.sweep(1)
        E = _total_energy(model)
        parity = t % 2
        pairs = np.arange(parity, T - 1, 2)
        if pairs.size:
            u = hr.uniform(
                (pairs.size, R), model.seed, offset=0, dtype="float64", stream=stream + model.sweeps_done
            )
            a = chain_at[pairs]
            c = chain_at[pairs + 1]
            log_acc = (b[pairs][:, None] - b[pairs + 1][:, None]) * (E[a] - E[c])
            acc = np.log(u) < np.minimum(log_acc, 0.0)
            tries[pairs] += R
            accepted[pairs] += acc.sum(axis=1)
            chain_at[pairs] = np.where(acc, c, a)
            chain_at[pairs + 1] = np.where(acc, a, c)
            beta_of[chain_at] = b[:, None]
            model.beta = beta_of
        if t >= warmup and (t - int(warmup) + 1) % int(thin) == 0:
            E_rec.append(E[chain_at[-1]])
            if keep_states:
                st = model.spins if isinstance(model, IsingLattice) else model.state
                S_rec.append(st[chain_at[-1]])
    return TemperingResult(
        np.array(E_rec), np.array(S_rec) if keep_states else None, accepted / np.maximum(tries, 1), b
    )
