"""Ising lattices and sparse Ising/Potts graphs in shards, each rebuilt
from a template with ``chain_offset`` (:func:`shard_model`): Gibbs
sampling with observers and node/pair moments reduced on the workers."""

from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .chains import sample_chains
from .._guard import MAX_VALUES, check_values
from .plan import Totals, _int_at_least


# ---------------------------------------------------------------------------
# lattice and sparse-graph models: shards rebuilt from a template
# ---------------------------------------------------------------------------


def _is_lattice(model: Any) -> bool:
    from ..ebm.lattice import IsingLattice

    return isinstance(model, IsingLattice)


def _alignment(model: Any) -> int:
    """Chains per aligned block of the model's ``chain_offset`` (1 for
    lattices, 256 for sparse graphs)."""
    from ..ebm.sparse import _SparseModel

    if _is_lattice(model):
        return 1
    if isinstance(model, _SparseModel):
        return 256
    raise TypeError(
        f"'model': expected an IsingLattice, SparseIsing or SparsePotts template, got {type(model).__name__}"
    )


def _run_betas(model: Any, n_chains: int) -> np.ndarray:
    """The beta of each of the run's ``n_chains`` chains: the template's
    array when it has one value per chain of the run, else its common value."""
    b = np.asarray(model.beta, dtype=np.float64)
    if b.size == n_chains:
        return b
    if np.all(b == b[0]):
        return np.full(n_chains, b[0])
    raise ValueError(
        f"'model': its beta has {b.size} different values; give a template with one beta for all chains "
        f"or with n_chains = {n_chains} (one beta per chain of the run)"
    )


def _clamped_values(model: Any) -> Tuple[np.ndarray, np.ndarray]:
    nodes = np.flatnonzero(model.clamped)
    if nodes.size == 0:
        return nodes, np.zeros(0, dtype=np.int64)
    vals = model.state[:, nodes]
    if np.any(vals != vals[0]):
        raise ValueError("'model': clamped nodes must hold the same values in every chain of the template")
    return nodes, vals[0]


def _canonical(a: Any) -> Any:
    """``a`` with numpy's own dtype object: an array unpickled on a worker
    carries a dtype that is equal to but not the same object as numpy's, and
    the sparse-graph bindings compare dtypes by identity."""
    if isinstance(a, np.ndarray) and a.dtype is not np.dtype(a.dtype.type):
        return a.astype(a.dtype.type)
    return a


def _build(model: Any, n_chains: int, start: int, stop: int, betas: Optional[np.ndarray] = None) -> Any:
    """A fresh model of chains ``[start, stop)`` of an ``n_chains`` run of the
    template ``model`` (chain_offset = start)."""
    b = _run_betas(model, n_chains)[start:stop] if betas is None else betas
    if _is_lattice(model):
        from ..ebm.lattice import IsingLattice

        return IsingLattice(model.shape, beta=b, J=model.J, h=model.h, n_chains=stop - start,
                            method=model.method, seed=model.seed, init=getattr(model, "init", "random"),
                            device=model.device, chain_offset=start)
    from ..ebm.graphs import CSRGraph
    from ..ebm.sparse import SparseIsing, SparsePotts

    g = model.graph
    graph = CSRGraph(_canonical(g.row), _canonical(g.col), _canonical(g.weights), g.n)
    kw = dict(beta=b, n_chains=stop - start, colouring=_canonical(model.colours), seed=model.seed,
              storage=model.storage, device=model.device, chain_offset=start)
    if model._potts:
        m = SparsePotts(graph, model.K, model.bias, **kw)
    else:
        m = SparseIsing(graph, model.bias, **kw)
    nodes, vals = _clamped_values(model)
    if nodes.size:
        m.clamp(nodes, vals)
    return m


def shard_model(model: Any, n_chains: int, start: int = 0, stop: Optional[int] = None) -> Any:
    """A fresh model holding chains ``[start, stop)`` of a run of ``n_chains``
    chains of the template ``model``: the same parameters, seed, colouring,
    clamped nodes (same values in every chain) and initial states as chains
    ``start .. stop - 1`` of ``shard_model(model, n_chains)``, the one-object
    run that the sharded wrappers (:func:`gibbs_lattice`, :func:`gibbs_sparse`,
    :func:`sparse_ais`, :func:`parallel_tempering`) equal to the bit.

    Parameters
    ----------
    model : IsingLattice, SparseIsing or SparsePotts
        The template; its state and sweep count are not used. Its beta is
        taken per chain when it has ``n_chains`` values, else its common value.
    n_chains : int
        Chains of the whole run.
    start, stop : int
        The chains held (``stop`` defaults to ``n_chains``). For sparse
        graphs ``start`` must be a multiple of 256 (their ``chain_offset``).
    """
    n = _int_at_least(n_chains, "n_chains", 1, MAX_VALUES)
    a = _int_at_least(start, "start", 0)
    b = n if stop is None else _int_at_least(stop, "stop", 1)
    if not a < b <= n:
        raise ValueError(f"'start', 'stop': expected 0 <= start < stop <= n_chains ({n}), got [{a}, {b})")
    _alignment(model)
    return _build(model, n, a, b)


def _aligned_chunk(model: Any, n: int, chunk: Optional[int], client: Any, per_worker: int) -> int:
    align = _alignment(model)
    if chunk is None:
        workers = 1
        if client is not None and getattr(client, "status", None) == "running":
            workers = max(1, len(client.scheduler_info().get("workers", {})))
        c = max(1, -(-n // (per_worker * workers)))
        return -(-c // align) * align
    c = _int_at_least(chunk, "chunk", 1)
    if c % align and c < n:
        raise ValueError(
            f"'chunk': must be a multiple of {align} for {type(model).__name__} (each shard's 'chain_offset' "
            f"is a multiple of {align}), got {c}"
        )
    return c


def _lattice_shard(model: Any, n: int, n_sweeps: int, warmup: int, thin: int, observers: Tuple[str, ...],
                   keep_states: bool, start: int, stop: int, seed: int) -> Dict[str, Any]:
    lat = _build(model, n, start, stop)
    r = lat.sample(n_sweeps, warmup=warmup, thin=thin)
    out: Dict[str, Any] = {}
    if "energy" in observers:
        out["energy"] = np.ascontiguousarray(r.energy.T)
    if "magnetization" in observers:
        out["magnetization"] = np.ascontiguousarray(r.magnetization.T)
    if keep_states:
        out["spins"] = lat.spins
    return out


def _observers(observers: Any, allowed: Tuple[str, ...]) -> Tuple[str, ...]:
    obs = (observers,) if isinstance(observers, str) else tuple(observers)
    bad = [o for o in obs if o not in allowed]
    if bad or not obs:
        raise ValueError(f"'observers': expected a non-empty subset of {allowed}, got {observers!r}")
    return obs


def _gibbs_result(res: Dict[str, Any], reduce: str, per_record: Tuple[str, ...]) -> Dict[str, Any]:
    """Shard results (chains first) back to the models' layout: per-record
    observers as (n_records, n_chains), or their mean/var over the chains."""
    out = {}
    for k, v in res.items():
        if k in per_record and reduce == "concat":
            out[k] = np.ascontiguousarray(v.T)
        else:
            out[k] = v
    return out


def _gibbs_args(n_chains: Any, observers: Any, reduce: str, keep_states: bool, what: str) -> tuple:
    """The checks shared by the Gibbs wrappers: (n_chains, observers)."""
    n = _int_at_least(n_chains, "n_chains", 1, MAX_VALUES)
    obs = _observers(observers, ("energy", "magnetization"))
    if reduce not in ("concat", "mean_var"):
        raise ValueError(f"'reduce': expected 'concat' or 'mean_var', got {reduce!r}")
    if keep_states and reduce != "concat":
        raise ValueError(f"'keep_states': the {what} are returned with reduce='concat' only")
    return n, obs


def gibbs_lattice(
    client: Any,
    model: Any,
    n_chains: int,
    n_sweeps: int,
    *,
    warmup: int = 0,
    thin: int = 1,
    observers: Any = ("energy", "magnetization"),
    reduce: str = "concat",
    keep_states: bool = False,
    chunk: Optional[int] = None,
    retries: int = 0,
) -> Dict[str, Any]:
    """Gibbs (or Metropolis) sweeps of ``n_chains`` Ising lattices in shards on
    a Dask cluster, equal to the bit to
    ``shard_model(model, n_chains).sample(n_sweeps, warmup, thin)``.

    Each shard builds the lattices of its chains with ``chain_offset`` (same
    initial spins and random numbers as those rows of the whole run), sweeps
    them where it runs, and sends back only the observers (computed in the
    kernels) and, with ``keep_states``, its final spins once.

    Parameters
    ----------
    client : dask.distributed.Client or None
    model : IsingLattice
        Template (shape, J, h, method, seed, init, device; beta per chain of
        the run or one for all); ``n_chains=1`` is enough.
    n_chains : int
        Chains (lattices) of the run.
    n_sweeps, warmup, thin : int
        As in :meth:`IsingLattice.sample`.
    observers : subset of ("energy", "magnetization")
        Per spin, recorded every ``thin`` sweeps.
    reduce : {"concat", "mean_var"}
        "concat": each observer as an array (n_records, n_chains), like
        ``LatticeSamples``. "mean_var": ``{"mean", "var", "n"}`` over the
        chains per record (arrays of shape (n_records,)), exact sums sent by
        each shard.
    keep_states : bool
        Also return the final spins, "spins" of shape (n_chains, *shape) int8
        (``reduce="concat"`` only).
    chunk : int, optional
        Chains per shard (default: about two shards per worker).
    retries : int
        As in :func:`sample_chains`.

    Returns
    -------
    dict of the observers (and "spins").
    """
    if not _is_lattice(model):
        raise TypeError(f"'model': expected an IsingLattice template, got {type(model).__name__}")
    n, obs = _gibbs_args(n_chains, observers, reduce, keep_states, "final spins")
    n_sweeps = _int_at_least(n_sweeps, "n_sweeps", 1)
    warmup = _int_at_least(warmup, "warmup", 0)
    thin = _int_at_least(thin, "thin", 1)
    if n_sweeps // thin < 1:
        raise ValueError(f"'n_sweeps': must be >= thin ({thin}) to record anything, got {n_sweeps}")
    if (n_sweeps // thin) * n > 2**31:  # as IsingLattice.sample
        raise ValueError(
            f"'n_sweeps': {n_sweeps // thin} records of {n} chains are too many to keep; raise 'thin'"
        )
    _run_betas(model, n)
    chunk = _aligned_chunk(model, n, chunk, client, 2)
    fn = functools.partial(_lattice_shard, model, n, n_sweeps, warmup, thin, obs, bool(keep_states))
    res = sample_chains(client, fn, n, model.seed, chunk=chunk, reduce=reduce, retries=retries)
    return _gibbs_result(res, reduce, obs)


def _integer_totals(mean: Optional[np.ndarray], denom: int, what: str) -> np.ndarray:
    """The kernel's integer sums behind ``mean = sum / denom`` (sums of +/-1
    or of 0/1 below 2**50 in magnitude): ``rint(mean * denom)`` is exact there."""
    t = np.rint(np.asarray(mean, dtype=np.float64) * denom)
    if np.any(np.abs(t) >= 2.0**50) or not np.array_equal(t / denom, mean):
        raise ValueError(f"{what}: the moment sums are not the integers they should be")
    return t


def _sparse_shard(model: Any, n: int, n_samples: int, warmup: int, thin: int, nodes: Any, pairs: Any,
                  observers: Tuple[str, ...], keep_states: bool, start: int, stop: int,
                  seed: int) -> Dict[str, Any]:
    m = _build(model, n, start, stop)
    r = m.sample(n_samples, warmup=warmup, thin=thin, nodes=nodes, pairs=pairs, keep_states=keep_states)
    denom = n_samples * (stop - start)
    out: Dict[str, Any] = {}
    if "energy" in observers:
        out["energy"] = np.ascontiguousarray(r.energy.T)
    if "magnetization" in observers and r.magnetization is not None:
        out["magnetization"] = np.ascontiguousarray(r.magnetization.T)
    if r.node_mean is not None:
        out["node_mean"] = Totals(_integer_totals(r.node_mean, denom, "node moments"))
    if r.pair_mean is not None:
        out["pair_mean"] = Totals(_integer_totals(r.pair_mean, denom, "pair moments"))
    if keep_states:
        out["states"] = np.ascontiguousarray(r.states.transpose(1, 0, 2))
    return out


def gibbs_sparse(
    client: Any,
    model: Any,
    n_chains: int,
    n_samples: int,
    *,
    warmup: int = 0,
    thin: int = 1,
    nodes: Any = None,
    pairs: Any = None,
    observers: Any = ("energy", "magnetization"),
    reduce: str = "concat",
    keep_states: bool = False,
    chunk: Optional[int] = None,
    retries: int = 0,
) -> Dict[str, Any]:
    """Block-Gibbs sampling of ``n_chains`` chains of a sparse Ising or Potts
    graph in shards on a Dask cluster, equal to the bit to
    ``shard_model(model, n_chains).sample(n_samples, warmup, thin, nodes,
    pairs, keep_states)``.

    Shards start at multiples of 256 chains (the models' ``chain_offset``
    alignment), so ``chunk`` is a multiple of 256. Node and pair moments
    are summed by the kernels on the workers; only the sums travel (exact
    integers, added exactly), and the states at most once (``keep_states``).

    Parameters
    ----------
    client : dask.distributed.Client or None
    model : SparseIsing or SparsePotts
        Template (graph, biases, colouring, clamped nodes with the same
        values in all chains, seed; beta per chain of the run or one for all).
    n_chains, n_samples, warmup, thin, nodes, pairs, keep_states
        As in :meth:`SparseIsing.sample` (``nodes="all"``, ``pairs="edges"``).
    observers : subset of ("energy", "magnetization")
        Per chain and record (magnetization: Ising only).
    reduce : {"concat", "mean_var"}
        "concat": "energy" and "magnetization" of shape (n_records,
        n_chains), like ``SparseSamples``. "mean_var": their ``{"mean",
        "var", "n"}`` over the chains per record. "node_mean" and
        "pair_mean" are the averages over chains and records either way;
        "states" (``keep_states``, concat only): (n_records, n_chains, n_nodes).
    chunk : int, optional
        Chains per shard, a multiple of 256 (default: about two shards per
        worker, rounded up).
    retries : int
        As in :func:`sample_chains`.

    Returns
    -------
    dict with the observers, "node_mean" / "pair_mean" when asked for, "states".
    """
    if _is_lattice(model) or _alignment(model) != 256:
        what = type(model).__name__
        raise TypeError(f"'model': expected a SparseIsing or SparsePotts template, got {what}")
    n, obs = _gibbs_args(n_chains, observers, reduce, keep_states, "states")
    n_samples = _int_at_least(n_samples, "n_samples", 1)
    warmup = _int_at_least(warmup, "warmup", 0)
    thin = _int_at_least(thin, "thin", 1)
    per_record = n * (2 + (model.n_nodes if keep_states else 0))
    check_values(n_samples * per_record, "n_samples", f"{n_samples} records of {n} chains")
    _run_betas(model, n)
    _clamped_values(model)
    model._node_list(nodes)  # checks here, not on every worker
    model._pair_list(pairs)
    chunk = _aligned_chunk(model, n, chunk, client, 2)
    fn = functools.partial(_sparse_shard, model, n, n_samples, warmup, thin, nodes, pairs, obs,
                           bool(keep_states))
    res = sample_chains(client, fn, n, model.seed, chunk=chunk, reduce=reduce, retries=retries)
    denom = float(n_samples * n)
    for k in ("node_mean", "pair_mean"):
        if k in res:
            res[k] = res[k] / denom
    if "states" in res:
        res["states"] = np.ascontiguousarray(res["states"].transpose(1, 0, 2))
    return _gibbs_result(res, reduce, obs)
