"""Annealed importance sampling in shards: the AIS log Z of an RBM (runs
annealed in blocks aligned on the run index) and of lattice and
sparse-graph models."""

from __future__ import annotations

import functools
import math
from typing import Any, Optional

import numpy as np

from ..random import _as_u64, as_seed
from .chains import sample_chains
from .graphs import _aligned_chunk, _alignment, _build, _clamped_values, _is_lattice, _run_betas
from .._guard import MAX_VALUES, as_float
from .plan import _int_at_least


def _ais_shard(
    rbm: Any, betas: np.ndarray, base: Any, block: int, start: int, stop: int, seed: int
) -> np.ndarray:
    from ..ebm import ais as _ais

    out = []
    for a in range(start, stop, block):
        path = _ais.RBMPath(rbm, min(block, stop - a), base, np, seed, row0=a)
        est = _ais.ais(path.initial(), betas, path.transition, path.log_z0, log_ratio=path.log_ratio)
        out.append(est.log_weights)
    return np.concatenate(out)


def rbm_ais(
    client: Any,
    rbm: Any,
    n_runs: int,
    *,
    seed: int,
    betas: Any = "salakhutdinov",
    data: Any = None,
    base: Any = None,
    block: int = 100,
    chunk: Optional[int] = None,
    retries: int = 0,
) -> Any:
    """AIS estimate of log Z of a fitted (Gaussian-)Bernoulli RBM with the
    annealing runs sharded over a Dask cluster.

    The runs are annealed in blocks of ``block`` runs aligned on the run
    index (run ``i`` in block ``i // block``), each block drawing the Philox
    counters of its rows, so the estimate does not depend on the workers or
    on ``chunk`` (a multiple of ``block``). Blocks make the result exact
    despite BLAS: a dense product may round a row differently depending on
    how many rows it has. With ``n_runs <= block`` the estimate equals
    ``heatbath.ebm.ais.rbm_ais(rbm, n_runs, betas, data, base, seed)`` to the bit.

    Parameters
    ----------
    client : dask.distributed.Client or None
    rbm : BernoulliRBM or GaussianBernoulliRBM (numpy parameters)
    n_runs : int
        Annealing runs in all.
    seed : int
        Philox key of the runs.
    betas, data, base
        As in :func:`heatbath.ebm.ais.rbm_ais`.
    block : int
        Runs annealed together (one matrix product) on a worker.
    chunk : int, optional
        Runs per shard, a multiple of ``block`` (default: about two shards
        per worker, rounded up to whole blocks).
    retries : int
        As in :func:`sample_chains`.

    Returns
    -------
    heatbath.ebm.LogZEstimate (method "ais") with all runs' log weights.
    """
    from ..ebm import ais as _ais
    from ..ebm._estimates import LogZEstimate

    n = _int_at_least(n_runs, "n_runs", 1, MAX_VALUES)
    block = _int_at_least(block, "block", 1)
    seed = as_seed(seed)
    rbm._check_fitted()
    if base is None and data is not None and rbm._visible_sigma() is None:
        base = _ais.base_rate_biases(rbm._X(data, "data"))
    b = _ais.as_betas(betas)
    if chunk is None:
        workers = 1
        if client is not None and getattr(client, "status", None) == "running":
            workers = max(1, len(client.scheduler_info().get("workers", {})))
        blocks = -(-n // block)
        chunk = block * max(1, -(-blocks // (2 * workers)))
    chunk = _int_at_least(chunk, "chunk", 1)
    if chunk % block:
        raise ValueError(f"'chunk': must be a multiple of 'block' ({block}), got {chunk}")
    log_z0 = _ais.RBMPath(rbm, 1, base, np, seed).log_z0
    fn = functools.partial(_ais_shard, rbm, b, base, block)
    lw = sample_chains(client, fn, n, seed, chunk=chunk, retries=retries)
    return LogZEstimate.from_log_weights(lw, log_z0, "ais")


def _ais_graph_shard(model: Any, n: int, path: np.ndarray, sweeps_per_step: int, beta: float, stream: int,
                     squares: bool, start: int, stop: int, seed: int) -> Any:
    from ..ebm.graph_annealing import graph_ais

    m = _build(model, n, start, stop)
    lw = graph_ais(m, path, sweeps_per_step, beta=beta, stream=stream).log_weights
    return {"w": lw, "w2": 2.0 * lw} if squares else lw


def sparse_ais(
    client: Any,
    model: Any,
    n_chains: int,
    *,
    betas: Any = 1000,
    sweeps_per_step: int = 1,
    beta: Optional[float] = None,
    stream: int = (1 << 62) + 17,
    keep_weights: bool = True,
    chunk: Optional[int] = None,
    retries: int = 0,
) -> Any:
    """AIS estimate of log Z(beta) of a sparse Ising/Potts graph (or an Ising
    lattice), one annealing run per chain, with the runs sharded over a Dask
    cluster; equal to the bit to
    ``graph_ais(shard_model(model, n_chains), betas, sweeps_per_step, beta)``.

    Each shard anneals its chains where it runs and sends back one log
    weight per run (as :func:`rbm_ais`); the estimate, its standard error
    and ESS are computed from all of them. With ``keep_weights=False`` the
    weights stay on the workers and are reduced there by log-sum-exp
    (``log sum w`` and ``log sum w^2``, exact sums, so the estimate does not
    depend on the sharding; it equals the weights' estimate to rounding).

    Parameters
    ----------
    client : dask.distributed.Client or None
    model : SparseIsing, SparsePotts or IsingLattice
        Template, as in :func:`shard_model`.
    n_chains : int
        Annealing runs.
    betas, sweeps_per_step, beta, stream
        As in :func:`heatbath.ebm.graph_annealing.graph_ais` (``beta``
        defaults to the template's chain-0 beta).
    keep_weights : bool
        Gather the log weights (True) or only their log-sum-exp reductions.
    chunk : int, optional
        Runs per shard (sparse graphs: a multiple of 256).
    retries : int

    Returns
    -------
    LogZEstimate (method "ais") with all runs' log weights (None with
    ``keep_weights=False``).
    """
    from ..ebm._estimates import LogZEstimate
    from ..ebm.ais import as_betas
    from ..ebm.graph_annealing import _n_free_and_states

    n = _int_at_least(n_chains, "n_chains", 1, MAX_VALUES)
    _alignment(model)
    path = as_betas(betas)  # a count or a non-decreasing path from 0 to 1 (NaN refused)
    spp = _int_at_least(sweeps_per_step, "sweeps_per_step", 1)
    target = float(_run_betas(model, n)[0]) if beta is None else as_float(beta, "beta")
    if not np.isfinite(target) or abs(target) > np.finfo(np.float32).max:
        raise ValueError(f"'beta': must be finite (in float32), got {target}")
    stream = _as_u64(stream, "stream")
    if not _is_lattice(model):
        _clamped_values(model)
    chunk = _aligned_chunk(model, n, chunk, client, 2)
    n_free, k = _n_free_and_states(model)
    log_z0 = n_free * float(np.log(k))
    fn = functools.partial(_ais_graph_shard, model, n, path, spp, target, int(stream), not keep_weights)
    if keep_weights:
        lw = sample_chains(client, fn, n, model.seed, chunk=chunk, retries=retries)
        return LogZEstimate.from_log_weights(lw, log_z0, "ais")
    lse = sample_chains(client, fn, n, model.seed, chunk=chunk, reduce="logsumexp", retries=retries)
    l1, l2 = lse["w"], lse["w2"]
    r = math.exp(l2 - 2.0 * l1)  # sum w^2 / (sum w)^2 = 1 / ESS
    stderr = math.sqrt(max(n * r - 1.0, 0.0) / (n - 1)) if n > 1 else math.inf
    return LogZEstimate(float(log_z0 + l1 - math.log(n)), stderr, 1.0 / r, "ais")
