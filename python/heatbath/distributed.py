"""Sharded sampling on Dask, equal to the bit to the one-process run.

Every random number in heatbath is Philox4x32-10 of (seed, stream, counter),
so chains ``[start, stop)`` of a run can be drawn anywhere from their own
counters. :func:`sample_chains` splits ``n_chains`` chains into shards of
``chunk`` chains, runs ``fn(start, stop, seed)`` for each shard on the
workers of a ``dask.distributed.Client`` (or in this process with
``client=None``) and concatenates or reduces the results:

- ``reduce="concat"``: the per-chain results, in chain order;
- ``reduce="mean_var"``: mean and variance over the chains, from exact
  (integer) sums of ``x`` and ``x * x`` that each shard computes on its
  worker, so only the sums travel and the result does not depend on the
  sharding;
- ``reduce="logsumexp"``: ``log sum_i exp(x_i)`` over the chains (AIS
  weights), from the global maximum and an exact sum of ``exp(x_i - max)``;
  the shards' values stay on the workers.

Whatever the number of workers and the chunk size, the result equals that of
``client=None`` to the bit, provided ``fn`` gives each chain a result that
depends only on (seed, chain index): heatbath's kernels do; a dense matrix
product through BLAS may not (OpenBLAS rounds a row differently depending
on the number of rows of the product).

Wrappers: :func:`sample_dpm` (diffusion samples, equal to
``model.sample(n, seed=seed)``), :func:`rbm_ais` (AIS log Z of an RBM, runs
annealed in blocks aligned on the run index so that BLAS sees the same
shapes however the runs are sharded), and for Ising lattices and sparse
Ising/Potts graphs, whose shards are built with ``chain_offset``
(:func:`shard_model`): :func:`gibbs_lattice` and :func:`gibbs_sparse`
(observers and node/pair moments reduced on the workers),
:func:`sparse_ais` and :func:`parallel_tempering` (replica states kept on
the workers, energies sent to the client each sweep, swaps decided there).
See docs/distributed.md.

Fault tolerance is Dask's: each shard is a task with its own key and a pure
function of its chain range, so a shard lost with a worker is recomputed from
the same counters, and nothing is lost or counted twice. ``retries`` reruns a
shard whose function raised.

Install with the ``dist`` extra (``dask[distributed]``); Dask is imported only
when a client is given.
"""

from __future__ import annotations

import functools
import math
import operator
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from .random import as_seed

__all__ = [
    "ShardError",
    "Totals",
    "shards",
    "sample_chains",
    "sample_dpm",
    "rbm_ais",
    "shard_model",
    "gibbs_lattice",
    "gibbs_sparse",
    "sparse_ais",
    "parallel_tempering",
]

_REDUCE = ("concat", "mean_var", "logsumexp")
# exact sums hold sum(x) * 2**_SCALE_BITS as a Python int: every finite float64
# is m * 2**(e - 53) with |m| < 2**53 and e >= -1073, so the scaled value is an integer
_SCALE_BITS = 1127

ShardFn = Callable[[int, int, int], Any]


class Totals:
    """A shard result that is already a sum over the shard's chains (node or
    pair moments, counts): ``fn`` may return it under a key of its result
    dict; :func:`sample_chains` adds these up exactly over the shards
    (``reduce="concat"`` or ``"mean_var"``) instead of concatenating them.
    The total is the exact sum rounded once, so it does not depend on the
    sharding."""

    def __init__(self, value: Any) -> None:
        self.value = np.asarray(_host(value), dtype=np.float64)


class ShardError(RuntimeError):
    """A shard failed: its function raised, returned a bad result, or its
    worker was lost more often than Dask allows. The message names the shard
    and its chain range."""


def shards(n_chains: int, chunk: int) -> List[Tuple[int, int]]:
    """The chain ranges ``[start, stop)`` of ``n_chains`` chains in shards of
    ``chunk`` (the last one shorter).

    Parameters
    ----------
    n_chains : int
        Total number of chains, >= 1.
    chunk : int
        Chains per shard, >= 1.

    Returns
    -------
    list of (start, stop)
    """
    n = _int_at_least(n_chains, "n_chains", 1)
    c = _int_at_least(chunk, "chunk", 1)
    return [(a, min(a + c, n)) for a in range(0, n, c)]


def _int_at_least(v: Any, name: str, minimum: int) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None
    if v < minimum:
        raise ValueError(f"'{name}': must be >= {minimum}, got {v}")
    return v


def _label(i: int, start: int, stop: int) -> str:
    return f"shard {i} (chains [{start}, {stop}))"


# ---------------------------------------------------------------------------
# exact sums
# ---------------------------------------------------------------------------


def _exact_column_sums(x: np.ndarray) -> List[int]:
    """Exact sums over axis 0 of a 2-D float64 array with finite values, as
    Python ints scaled by 2**_SCALE_BITS (independent of order and grouping).

    Each value is split into its exponent and a 53-bit integer mantissa, cut
    into three 18-bit pieces; the pieces are summed per (column, exponent) by
    ``np.bincount`` in float64, exactly (integers below 2**53 for up to 2**35
    rows), and the bins are combined as Python ints."""
    n, k = x.shape
    if n == 0 or k == 0:
        return [0] * k
    if n >= 1 << 35:
        raise ValueError(f"exact sums support fewer than 2**35 rows, got {n}")
    m, e = np.frexp(x)
    mant = np.ldexp(m, 53).astype(np.int64)  # exact: |mant| < 2**53
    sign = np.sign(mant)
    a = np.abs(mant)
    shift = e.astype(np.int64) + (_SCALE_BITS - 53)  # >= 1 for every finite float64
    lo = int(shift.min())
    span = int(shift.max()) - lo + 1
    key = (shift - lo) + np.arange(k, dtype=np.int64) * span
    key = key.ravel()
    totals = [0] * k
    for extra, piece in ((36, a >> 36), (18, (a >> 18) & 0x3FFFF), (0, a & 0x3FFFF)):
        s = np.bincount(key, weights=(sign * piece).ravel().astype(np.float64), minlength=k * span)
        for b in np.flatnonzero(s):
            col, ee = divmod(int(b), span)
            v = int(s[b])
            totals[col] += v << (ee + lo + extra) if v >= 0 else -((-v) << (ee + lo + extra))
    return totals


def _as_2d(a: np.ndarray, where: str) -> np.ndarray:
    x = np.ascontiguousarray(a, dtype=np.float64).reshape(a.shape[0], -1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: reduce='mean_var' needs finite values")
    return x


# ---------------------------------------------------------------------------
# what runs on a worker
# ---------------------------------------------------------------------------


def _host(a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def _run_shard(fn: ShardFn, i: int, start: int, stop: int, seed: int, mode: str) -> Any:
    """Run ``fn`` on one shard, check its result and, for ``mode="mean_var"``,
    reduce it to exact sums where it was computed."""
    where = _label(i, start, stop)
    try:
        out = fn(start, stop, seed)
    except Exception as exc:
        raise ShardError(f"{where}: the shard function raised {type(exc).__name__}: {exc}") from exc
    items = out.items() if isinstance(out, dict) else [(None, out)]
    res: Dict[Any, Any] = {}
    totals: Dict[Any, Totals] = {}
    for name, a in items:
        if isinstance(a, Totals):
            if mode == "logsumexp":
                raise ShardError(f"{where}: reduce='logsumexp' takes no Totals (result {name!r})")
            if not np.all(np.isfinite(a.value)):
                raise ShardError(f"{where}: Totals {name!r} must be finite")
            totals[name] = a
            continue
        a = _host(a)
        what = "the result" if name is None else f"result {name!r}"
        if a.ndim == 0 or a.shape[0] != stop - start:
            raise ShardError(
                f"{where}: {what} should have a leading dimension of {stop - start} chains, "
                f"got shape {a.shape}"
            )
        if mode != "concat" and a.dtype.kind not in "biuf":
            raise ShardError(f"{where}: reduce={mode!r} needs real values, {what} has dtype {a.dtype}")
        res[name] = a
    if mode == "mean_var":
        sums = {}
        for name, a in res.items():
            try:
                x = _as_2d(a, where)
            except ValueError as exc:
                raise ShardError(str(exc)) from None
            sums[name] = (a.shape[1:], a.shape[0], _exact_column_sums(x), _exact_column_sums(x * x))
        sums.update(totals)
        return sums
    res.update(totals)
    return res


def _shard_max(res: Dict[Any, np.ndarray]) -> Dict[Any, np.ndarray]:  # logsumexp: no Totals here
    return {k: np.asarray(a, dtype=np.float64).max(axis=0) for k, a in res.items()}


def _shard_expsum(
    res: Dict[Any, np.ndarray], mx: Dict[Any, np.ndarray]
) -> Dict[Any, Tuple[tuple, List[int]]]:
    out = {}
    for k, a in res.items():
        a = np.asarray(a, dtype=np.float64)
        m = np.where(np.isfinite(mx[k]), mx[k], 0.0)
        w = np.exp(a - m).reshape(a.shape[0], -1)
        if not np.all(np.isfinite(w)):
            raise ShardError("reduce='logsumexp' needs values that are finite or -inf")
        out[k] = (a.shape[1:], _exact_column_sums(w))
    return out


# ---------------------------------------------------------------------------
# combining shards
# ---------------------------------------------------------------------------


def _sum_totals(parts: List[Dict[Any, Any]], name: Any) -> np.ndarray:
    """Exact sum over the shards of the Totals ``name``, rounded once."""
    vals = [p[name].value for p in parts]
    shape = vals[0].shape
    if any(v.shape != shape for v in vals):
        shapes = sorted({v.shape for v in vals})
        raise ShardError(f"Totals {name!r}: the shards returned different shapes {shapes}")
    x = np.stack([v.reshape(-1) for v in vals])
    scale = 1 << _SCALE_BITS
    return np.array([a / scale for a in _exact_column_sums(x)], dtype=np.float64).reshape(shape)


def _combine_mean_var(parts: List[Dict[Any, tuple]]) -> Dict[Any, Dict[str, Any]]:
    out: Dict[Any, Any] = {}
    for name in parts[0]:
        if isinstance(parts[0][name], Totals):
            out[name] = _sum_totals(parts, name)
            continue
        shape = parts[0][name][0]
        n = sum(p[name][1] for p in parts)
        s1 = [sum(c) for c in zip(*(p[name][2] for p in parts))]
        s2 = [sum(c) for c in zip(*(p[name][3] for p in parts))]
        scale = 1 << _SCALE_BITS
        mean = np.array([a / (scale * n) for a in s1], dtype=np.float64).reshape(shape)
        if n > 1:  # (s2 - s1^2 / n) / (n - 1), one rounding
            var = [(b * scale * n - a * a) / (scale * scale * n * (n - 1)) for a, b in zip(s1, s2)]
        else:
            var = [math.nan] * len(s1)
        out[name] = {"mean": mean, "var": np.array(var, dtype=np.float64).reshape(shape), "n": n}
    return out


def _combine_logsumexp(mx: Dict[Any, np.ndarray], parts: List[Dict[Any, tuple]]) -> Dict[Any, Any]:
    out = {}
    scale = 1 << _SCALE_BITS
    for name, m in mx.items():
        shape = parts[0][name][0]
        s = [sum(c) for c in zip(*(p[name][1] for p in parts))]
        total = np.array([a / scale for a in s], dtype=np.float64).reshape(shape)
        with np.errstate(divide="ignore"):
            r = np.where(np.isfinite(m), m + np.log(total), m)
        out[name] = float(r) if r.ndim == 0 else r
    return out


def _unwrap(d: Dict[Any, Any]) -> Any:
    return d[None] if list(d) == [None] else d


# ---------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------


class _Local:
    """Runs the tasks at once in this process (``client=None``)."""

    def submit(self, f: Callable, *args: Any, key: str) -> Any:
        return f(*args)

    def check(self, items: List[Any], labels: List[str]) -> None:
        pass

    def gather(self, items: List[Any], labels: List[str]) -> List[Any]:
        return list(items)

    def cancel(self, items: List[Any]) -> None:
        pass


class _Dask:
    def __init__(self, client: Any, retries: int) -> None:
        self.client = client
        self.retries = retries

    def submit(self, f: Callable, *args: Any, key: str) -> Any:
        return self.client.submit(f, *args, key=key, pure=True, retries=self.retries)

    def check(self, items: List[Any], labels: List[str]) -> None:
        """Wait for the tasks; raise for the first that failed, naming its shard."""
        from distributed import wait

        wait(items)
        for fut, label in zip(items, labels):
            if fut.status == "error":
                exc = fut.exception()
                self.cancel(items)
                if isinstance(exc, ShardError):
                    raise exc
                raise ShardError(f"{label}: failed on the cluster: {type(exc).__name__}: {exc}") from exc
            if fut.status != "finished":
                self.cancel(items)
                raise ShardError(f"{label}: the task ended as {fut.status!r}")

    def gather(self, items: List[Any], labels: List[str]) -> List[Any]:
        self.check(items, labels)
        return self.client.gather(items)

    def cancel(self, items: List[Any]) -> None:
        try:
            self.client.cancel(items)
        except Exception:  # the client may be gone; there is nothing left to cancel then
            pass


def _check_client(client: Any, first: str) -> None:
    status = getattr(client, "status", None)
    if status is None or not hasattr(client, "submit"):
        raise TypeError(f"'client': expected a dask.distributed.Client or None, got {type(client).__name__}")
    if status != "running":
        raise ShardError(f"'client': the Dask client is {status}; cannot submit {first}")


def _shard_plan(client: Any, n: int, chunk: int, retries: int) -> tuple:
    """(ranges, labels, executor, call id) of a sharded run: the client is
    checked before anything is submitted (errors name the first shard)."""
    ranges = shards(n, chunk)
    labels = [_label(i, a, b) for i, (a, b) in enumerate(ranges)]
    if client is None:
        ex: Union[_Local, _Dask] = _Local()
    else:
        _check_client(client, labels[0])
        ex = _Dask(client, retries)
    return ranges, labels, ex, uuid.uuid4().hex[:12]


def sample_chains(
    client: Any,
    fn: ShardFn,
    n_chains: int,
    seed: Any,
    *,
    chunk: Optional[int] = None,
    reduce: str = "concat",
    retries: int = 0,
) -> Any:
    """Run ``n_chains`` chains in shards on a Dask cluster (or in process).

    Parameters
    ----------
    client : dask.distributed.Client or None
        Where the shards run; None runs them one after the other here (the
        reference the sharded results equal to the bit).
    fn : callable(start, stop, seed) -> array or dict of arrays
        Draws chains ``[start, stop)`` of the run keyed by ``seed``; each
        result has a leading dimension of ``stop - start``. Every chain's
        result must depend only on (seed, chain index), e.g. through
        heatbath's Philox offsets. It must be picklable for a client.
    n_chains : int
        Total number of chains (>= 1).
    seed : int
        Philox key of the run, passed on to ``fn``.
    chunk : int, optional
        Chains per shard (>= 1). Default: about two shards per worker, or one
        shard without a client. The result does not depend on it.
    reduce : {"concat", "mean_var", "logsumexp"}
        "concat": the results of all chains in order (numpy arrays).
        "mean_var": ``{"mean", "var", "n"}`` over the chains (var with
        ``n - 1``), each shard sending only exact sums. "logsumexp":
        ``log sum exp`` over the chains (a float for one value per chain).
        For a dict-valued ``fn``, a dict of those per key.
    retries : int
        Times Dask reruns a shard whose function raised (a shard lost with a
        worker is always recomputed).

    Returns
    -------
    array, dict or float, as described under ``reduce``.

    Raises
    ------
    ShardError
        When the client is closed, or a shard's function raises or returns a
        result of the wrong shape; the message names the shard.
    ValueError, TypeError
        For bad arguments, naming the argument.
    """
    if not callable(fn):
        raise TypeError(f"'fn': expected a callable fn(start, stop, seed), got {type(fn).__name__}")
    n = _int_at_least(n_chains, "n_chains", 1)
    seed = as_seed(seed)
    if reduce not in _REDUCE:
        raise ValueError(f"'reduce': expected one of {_REDUCE}, got {reduce!r}")
    retries = _int_at_least(retries, "retries", 0)
    if chunk is None:
        workers = 1
        if client is not None and getattr(client, "status", None) == "running":
            workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunk = n if client is None else max(1, -(-n // (2 * workers)))
    ranges, labels, ex, call = _shard_plan(client, n, chunk, retries)
    keys = [f"heatbath-shard-{call}-{i}-{a}-{b}" for i, (a, b) in enumerate(ranges)]
    mode = reduce
    try:
        futs = [ex.submit(_run_shard, fn, i, a, b, seed, mode, key=k) for i, ((a, b), k) in
                enumerate(zip(ranges, keys))]
    except Exception as exc:
        raise ShardError(f"could not submit {labels[0]}: {type(exc).__name__}: {exc}") from exc
    if reduce == "concat":
        parts = ex.gather(futs, labels)
        names = list(parts[0])
        return _unwrap({k: _sum_totals(parts, k) if isinstance(parts[0][k], Totals)
                        else np.concatenate([p[k] for p in parts], axis=0) for k in names})
    if reduce == "mean_var":
        return _unwrap(_combine_mean_var(ex.gather(futs, labels)))
    # logsumexp: the shards' values stay where they are; only maxima and exact sums travel
    ex.check(futs, labels)  # surfaces a failed shard with its name before the next rounds
    maxs = ex.gather([ex.submit(_shard_max, f, key=k + "-max") for f, k in zip(futs, keys)], labels)
    mx = {k: functools.reduce(np.maximum, [m[k] for m in maxs]) for k in maxs[0]}
    sums = ex.gather([ex.submit(_shard_expsum, f, mx, key=k + "-expsum") for f, k in zip(futs, keys)], labels)
    return _unwrap(_combine_logsumexp(mx, sums))


# ---------------------------------------------------------------------------
# wrappers over heatbath's samplers
# ---------------------------------------------------------------------------


def _dpm_shard(model: Any, total: int, start: int, stop: int, seed: int, mask: Any = None,
               known: Any = None) -> np.ndarray:
    if mask is not None and np.ndim(mask) == 2:
        mask = mask[start:stop]
    if known is not None:
        known = known[start:stop]
    return _host(model.sample(stop - start, seed=seed, shard=(start, total), mask=mask, known=known))


def sample_dpm(
    client: Any,
    model: Any,
    n: int,
    *,
    seed: int = 0,
    chunk: Optional[int] = None,
    retries: int = 0,
    mask: Any = None,
    known: Any = None,
) -> np.ndarray:
    """``n`` ancestral samples of a diffusion model (``GaussianDPM``), in
    shards on a Dask cluster; equal to the bit to ``model.sample(n, seed=seed)``
    when the model's network computes each sample independently of the
    others (the default RBF network does).

    Parameters
    ----------
    client : dask.distributed.Client or None
    model : heatbath.diffusion.GaussianDPM
        Shipped to the workers with each shard (it is small).
    n : int
        Number of samples.
    seed, chunk, retries
        As in :func:`sample_chains`.
    mask, known : optional
        Inpainting, as in ``model.sample(n, mask=mask, known=known)``:
        ``mask`` (d,) or (n, d) bool, ``known`` (n, d); each shard gets its
        rows.

    Returns
    -------
    numpy array of shape (n, model.dim)
    """
    if not hasattr(model, "sample"):
        raise TypeError(f"'model': expected a diffusion model with sample(), got {type(model).__name__}")
    n = _int_at_least(n, "n", 1)
    if known is not None:
        if mask is None:
            raise ValueError("'mask': needed with 'known'")
        known = np.asarray(known)
        if known.ndim != 2 or known.shape[0] != n:
            raise ValueError(f"'known': expected shape ({n}, d), got {known.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 2 and mask.shape[0] != n:
            raise ValueError(f"'mask': expected shape (d,) or ({n}, d), got {mask.shape}")
    fn = functools.partial(_dpm_shard, model, n, mask=mask, known=known)
    return sample_chains(client, fn, n, seed, chunk=chunk, retries=retries)


def _ais_shard(
    rbm: Any, betas: np.ndarray, base: Any, block: int, start: int, stop: int, seed: int
) -> np.ndarray:
    from .ebm import ais as _ais

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
    from .ebm import ais as _ais
    from .ebm._estimates import LogZEstimate

    n = _int_at_least(n_runs, "n_runs", 1)
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


# ---------------------------------------------------------------------------
# lattice and sparse-graph models: shards rebuilt from a template
# ---------------------------------------------------------------------------


def _is_lattice(model: Any) -> bool:
    from .ebm.lattice import IsingLattice

    return isinstance(model, IsingLattice)


def _alignment(model: Any) -> int:
    """Chains per aligned block of the model's ``chain_offset`` (1 for
    lattices, 256 for sparse graphs)."""
    from .ebm.sparse import _SparseModel

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
        from .ebm.lattice import IsingLattice

        return IsingLattice(model.shape, beta=b, J=model.J, h=model.h, n_chains=stop - start,
                            method=model.method, seed=model.seed, init=getattr(model, "init", "random"),
                            device=model.device, chain_offset=start)
    from .ebm.graphs import CSRGraph
    from .ebm.sparse import SparseIsing, SparsePotts

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
    n = _int_at_least(n_chains, "n_chains", 1)
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
    n = _int_at_least(n_chains, "n_chains", 1)
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


def _ais_graph_shard(model: Any, n: int, path: np.ndarray, sweeps_per_step: int, beta: float, stream: int,
                     squares: bool, start: int, stop: int, seed: int) -> Any:
    from .ebm.graph_annealing import graph_ais

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
    from .ebm._estimates import LogZEstimate
    from .ebm.ais import linear_betas
    from .ebm.graph_annealing import _n_free_and_states

    n = _int_at_least(n_chains, "n_chains", 1)
    _alignment(model)
    path = linear_betas(int(betas)) if np.ndim(betas) == 0 else np.asarray(betas, dtype=np.float64).ravel()
    if path.size < 2 or path[0] != 0.0 or path[-1] != 1.0 or np.any(np.diff(path) < 0):
        raise ValueError("'betas': expected a count or a non-decreasing path from 0 to 1")
    spp = _int_at_least(sweeps_per_step, "sweeps_per_step", 1)
    target = float(_run_betas(model, n)[0]) if beta is None else float(beta)
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
    from .ebm.graph_annealing import _total_energy

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
    from .ebm.graph_annealing import _Tempering

    n = _int_at_least(n_chains, "n_chains", 1)
    _alignment(model)
    if not _is_lattice(model):
        _clamped_values(model)
    pt = _Tempering(betas, n)
    n_samples = _int_at_least(n_samples, "n_samples", 1)
    warmup = _int_at_least(warmup, "warmup", 0)
    thin = _int_at_least(thin, "thin", 1)
    retries = _int_at_least(retries, "retries", 0)
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
