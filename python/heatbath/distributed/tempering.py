"""Parallel tempering in shards: replica states stay on the workers,
energies travel to the client each sweep and swaps are decided there."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from .graphs import _aligned_chunk, _alignment, _build, _canonical, _clamped_values, _is_lattice
from .._guard import MAX_VALUES
from ..random import _as_u64
from .plan import ShardError, _host, _int_at_least, _shard_plan


# ---------------------------------------------------------------------------
# parallel tempering: replicas stay on the workers, energies travel
# ---------------------------------------------------------------------------


def _guarded(label: str, what: str, f: Callable, *args: Any) -> Any:
    try:
        return f(*args)
    except ShardError:
        raise
    except Exception as exc:
        raise ShardError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc


def _pt_start(model: Any, n: int, start: int, stop: int, betas: np.ndarray) -> Any:
    return _build(model, n, start, stop, betas)


def _pt_sweep(m: Any, betas: np.ndarray) -> Any:
    """The next round's state: a copy of ``m`` at ``betas``, one sweep on
    (a pure function of its inputs, so Dask can recompute it after a loss)."""
    import copy

    m = copy.copy(m)
    if _is_lattice(m):
        m._packed = m._packed.copy()
    else:
        m._s = m._s.astype(m._s.dtype.type) if isinstance(m._s, np.ndarray) else m._s.copy()
        m._k = {k: _canonical(v) for k, v in m._k.items()}
    m.beta = betas
    return m.sweep(1)


def _on_this_worker(m: Any) -> Any:
    """``m`` itself, or a shallow copy with numpy's own dtype objects when it
    was unpickled here (a state moved from another worker)."""
    if _is_lattice(m) or all(_canonical(v) is v for v in (m._s, *m._k.values())):
        return m
    import copy

    m = copy.copy(m)
    m._s = _canonical(m._s)
    m._k = {k: _canonical(v) for k, v in m._k.items()}
    return m


def _pt_energy(m: Any) -> np.ndarray:
    from ..ebm.graph_annealing import _total_energy

    return np.asarray(_host(_total_energy(_on_this_worker(m))), dtype=np.float64)


def _pt_states(m: Any, rows: np.ndarray) -> np.ndarray:
    m = _on_this_worker(m)
    st = m.spins if _is_lattice(m) else m.state
    return st[rows]


def parallel_tempering(
    client: Any,
    model: Any,
    n_chains: int,
    betas: Any,
    n_samples: int,
    *,
    warmup: int = 0,
    thin: int = 1,
    keep_states: bool = False,
    stream: int = (1 << 62) + 29,
    chunk: Optional[int] = None,
    retries: int = 0,
) -> Any:
    """Parallel tempering of a lattice or sparse graph with the replicas on
    the workers of a Dask cluster; equal to the bit to
    ``graph_parallel_tempering(shard_model(model, n_chains), betas, n_samples,
    warmup, thin, keep_states, stream)``.

    The ``n_chains = n_replicas * len(betas)`` chains are split into shards
    of ``chunk`` chains. A shard's state stays on its worker from round to
    round (each round is a task that takes the previous round's state, sets
    the chains' betas and sweeps once); only the chains' energies go to the
    client, which decides the swaps with the same Philox numbers and the
    same code as the one-process version (swaps exchange betas, not states)
    and sends each shard its new betas. States at the target beta travel
    once each, when ``keep_states``. A worker lost mid-run only costs the
    recomputation of its shard's rounds from their inputs.

    Parameters
    ----------
    client : dask.distributed.Client or None
    model : IsingLattice, SparseIsing or SparsePotts
        Template, as in :func:`shard_model` (its beta is not used).
    n_chains : int
        A multiple of ``len(betas)``.
    betas, n_samples, warmup, thin, keep_states, stream
        As in :func:`heatbath.ebm.graph_annealing.graph_parallel_tempering`.
    chunk : int, optional
        Chains per shard (sparse graphs: a multiple of 256). Default: one
        shard per worker.
    retries : int
        As in :func:`sample_chains`.

    Returns
    -------
    TemperingResult
    """
    from ..ebm.graph_annealing import _Tempering

    n = _int_at_least(n_chains, "n_chains", 1, MAX_VALUES)
    _alignment(model)
    if not _is_lattice(model):
        _clamped_values(model)
    pt = _Tempering(betas, n)
    n_samples = _int_at_least(n_samples, "n_samples", 1)
    warmup = _int_at_least(warmup, "warmup", 0)
    thin = _int_at_least(thin, "thin", 1)
    retries = _int_at_least(retries, "retries", 0)
    stream = _as_u64(stream, "stream")
    chunk = _aligned_chunk(model, n, chunk, client, 1)
    ranges, labels, ex, call = _shard_plan(client, n, chunk, retries)

    def submit(f: Callable, what: str, i: int, tag: str, *args: Any) -> Any:
        key = f"heatbath-pt-{call}-{tag}-{i}"
        try:
            return ex.submit(_guarded, labels[i], what, f, *args, key=key)
        except Exception as exc:
            raise ShardError(f"could not submit {labels[i]}: {type(exc).__name__}: {exc}") from exc

    states = [submit(_pt_start, "building the model", i, "init", model, n, a, b, pt.beta_of[a:b])
              for i, (a, b) in enumerate(ranges)]
    E_rec: List[np.ndarray] = []
    S_parts: List[List[Tuple[np.ndarray, Any]]] = []
    for t in range(pt.total_rounds(warmup, n_samples, thin)):
        states = [submit(_pt_sweep, f"round {t}", i, f"r{t}", st, pt.beta_of[a:b])
                  for i, (st, (a, b)) in enumerate(zip(states, ranges))]
        energies = [submit(_pt_energy, f"round {t} energies", i, f"e{t}", st) for i, st in enumerate(states)]
        E = np.concatenate(ex.gather(energies, labels))
        pt.swap(t, E, model.seed, int(stream) + t + 1)
        top = pt.recorded(t, warmup, thin)
        if top is not None:
            E_rec.append(E[top])
            if keep_states:
                rec = []
                for i, ((a, b), st) in enumerate(zip(ranges, states)):
                    sel = np.flatnonzero((top >= a) & (top < b))
                    if sel.size:
                        fut = submit(_pt_states, f"round {t} states", i, f"s{t}", st, top[sel] - a)
                        rec.append((sel, fut, labels[i]))
                S_parts.append(rec)
    S_rec = None
    if keep_states:
        flat = [f for rec in S_parts for _, f, _ in rec]
        got = iter(ex.gather(flat, [lab for rec in S_parts for _, _, lab in rec]))
        S_rec = []
        for rec in S_parts:
            rows = [(sel, next(got)) for sel, _, _ in rec]
            out = np.empty((pt.R,) + rows[0][1].shape[1:], dtype=rows[0][1].dtype)
            for sel, r in rows:
                out[sel] = r
            S_rec.append(out)
    return pt.result(E_rec, S_rec)
