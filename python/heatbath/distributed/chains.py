"""sample_chains: run ``fn(start, stop, seed)`` per shard and concatenate
or reduce the results (exact integer sums for mean and variance, a global
maximum and exact sums for log-sum-exp), equal to the bit to the
one-process run."""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..random import as_seed
from .._guard import MAX_VALUES
from .plan import ShardError, ShardFn, Totals, _host, _int_at_least, _label, _shard_plan


_REDUCE = ("concat", "mean_var", "logsumexp")
# exact sums hold sum(x) * 2**_SCALE_BITS as a Python int: every finite float64
# is m * 2**(e - 53) with |m| < 2**53 and e >= -1073, so the scaled value is an integer
_SCALE_BITS = 1127


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
    n = _int_at_least(n_chains, "n_chains", 1, MAX_VALUES)
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
