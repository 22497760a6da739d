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
``model.sample(n, seed=seed)``) and :func:`rbm_ais` (AIS log Z of an RBM, runs
annealed in blocks aligned on the run index so that BLAS sees the same
shapes however the runs are sharded). See docs/distributed.md.

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

__all__ = ["ShardError", "shards", "sample_chains", "sample_dpm", "rbm_ais"]

_REDUCE = ("concat", "mean_var", "logsumexp")
# exact sums hold sum(x) * 2**_SCALE_BITS as a Python int: every finite float64
# is m * 2**(e - 53) with |m| < 2**53 and e >= -1073, so the scaled value is an integer
_SCALE_BITS = 1127

ShardFn = Callable[[int, int, int], Any]


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
    res: Dict[Any, np.ndarray] = {}
    for name, a in items:
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
        return sums
    return res


def _shard_max(res: Dict[Any, np.ndarray]) -> Dict[Any, np.ndarray]:
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


def _combine_mean_var(parts: List[Dict[Any, tuple]]) -> Dict[Any, Dict[str, Any]]:
    out = {}
    for name in parts[0]:
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
    ranges = shards(n, chunk)
    labels = [_label(i, a, b) for i, (a, b) in enumerate(ranges)]
    if client is None:
        ex: Union[_Local, _Dask] = _Local()
    else:
        _check_client(client, labels[0])
        ex = _Dask(client, retries)
    call = uuid.uuid4().hex[:12]
    keys = [f"heatbath-shard-{call}-{i}-{a}-{b}" for i, (a, b) in enumerate(ranges)]
    mode = "mean_var" if reduce == "mean_var" else "concat"
    try:
        futs = [ex.submit(_run_shard, fn, i, a, b, seed, mode, key=k) for i, ((a, b), k) in
                enumerate(zip(ranges, keys))]
    except Exception as exc:
        raise ShardError(f"could not submit {labels[0]}: {type(exc).__name__}: {exc}") from exc
    if reduce == "concat":
        parts = ex.gather(futs, labels)
        names = list(parts[0])
        return _unwrap({k: np.concatenate([p[k] for p in parts], axis=0) for k in names})
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


def _dpm_shard(model: Any, total: int, start: int, stop: int, seed: int) -> np.ndarray:
    return _host(model.sample(stop - start, seed=seed, shard=(start, total)))


def sample_dpm(
    client: Any,
    model: Any,
    n: int,
    *,
    seed: int = 0,
    chunk: Optional[int] = None,
    retries: int = 0,
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

    Returns
    -------
    numpy array of shape (n, model.dim)
    """
    if not hasattr(model, "sample"):
        raise TypeError(f"'model': expected a diffusion model with sample(), got {type(model).__name__}")
    n = _int_at_least(n, "n", 1)
    fn = functools.partial(_dpm_shard, model, n)
    return sample_chains(client, fn, n, seed, chunk=chunk, retries=retries)


def _shifted_path(rbm: Any, n: int, base: Any, key: int, row0: int) -> Any:
    """heatbath.ebm.ais's AIS path of an RBM for runs ``row0 .. row0 + n - 1``
    of a larger run: the same Philox streams, each draw moved to the elements
    of those rows (``offset = row0 * units``)."""
    from .ebm import ais as _ais

    class _Shifted(_ais._RBMPath):
        def initial(self):
            xp = self.xp
            V = xp.empty((self.n, self.nv))
            zeros = xp.zeros((self.n, self.nv))
            off = row0 * self.nv
            if self.gauss:
                _ais.gaussian_units(zeros, self.b_s, 1.0, V, seed=self.seed, stream=self._next(), offset=off)
            else:
                _ais.bernoulli_units(zeros, xp.zeros(self.nv), V, seed=self.seed, stream=self._next(),
                                     scale=0.0, base=self.a, offset=off)
            self.pre_valid = False
            return V

        def transition(self, V, beta: float):
            xp = self.xp
            if not self.pre_valid:
                xp.matmul(V, self.Wt, out=self.pre)
                xp.add(self.pre, self.c, out=self.pre)
            if self.low:
                xp.copyto(self.pre_k, self.pre)
            _ais.bernoulli_units(self.pre_k, self.zero_h_k, self.H, seed=self.seed, stream=self._next(),
                                 scale=beta, offset=row0 * self.H.shape[1])
            xp.matmul(self.H, self.W_k, out=self.pv)
            out = self.V_k if self.low else V
            off = row0 * self.nv
            if self.gauss:
                _ais.gaussian_units(self.pv, self.b_s_k, 1.0, out, seed=self.seed, stream=self._next(),
                                    scale=beta, offset=off)
            else:
                _ais.bernoulli_units(self.pv, self.b_k, out, seed=self.seed, stream=self._next(), scale=beta,
                                     base=self.a_k, offset=off)
            if self.low:
                xp.copyto(V, self.V_k)
            self.pre_valid = False
            return V

    return _Shifted(rbm, n, base, np, key)


def _ais_shard(
    rbm: Any, betas: np.ndarray, base: Any, block: int, start: int, stop: int, seed: int
) -> np.ndarray:
    from .ebm import ais as _ais

    out = []
    for a in range(start, stop, block):
        path = _shifted_path(rbm, min(block, stop - a), base, seed, a)
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
    if base is None and data is not None and not rbm._gaussian:
        base = _ais.base_rate_biases(rbm._X(data, "data"))
    b = _ais._as_betas(betas)
    if chunk is None:
        workers = 1
        if client is not None and getattr(client, "status", None) == "running":
            workers = max(1, len(client.scheduler_info().get("workers", {})))
        blocks = -(-n // block)
        chunk = block * max(1, -(-blocks // (2 * workers)))
    chunk = _int_at_least(chunk, "chunk", 1)
    if chunk % block:
        raise ValueError(f"'chunk': must be a multiple of 'block' ({block}), got {chunk}")
    log_z0 = _shifted_path(rbm, 1, base, seed, 0).log_z0
    fn = functools.partial(_ais_shard, rbm, b, base, block)
    lw = sample_chains(client, fn, n, seed, chunk=chunk, retries=retries)
    return LogZEstimate.from_log_weights(lw, log_z0, "ais")
