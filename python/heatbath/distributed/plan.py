"""The shard plan: chains split into shards of consecutive chains, the
executor that runs them (this process, or a Dask client with one task per
shard and its own key), and the errors and totals shards report."""

from __future__ import annotations

import operator
import uuid
from typing import Any, Callable, List, Tuple, Union

import numpy as np

from .._guard import MAX_STEPS, MAX_VALUES

# A run in more shards than this is a plan no scheduler carries out.
MAX_SHARDS = 2**20



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
    n = _int_at_least(n_chains, "n_chains", 1, MAX_VALUES)
    c = _int_at_least(chunk, "chunk", 1)
    if -(-n // c) > MAX_SHARDS:
        raise ValueError(f"'chunk': {n} chains in shards of {c} make more than {MAX_SHARDS} shards")
    return [(a, min(a + c, n)) for a in range(0, n, c)]


def _int_at_least(v: Any, name: str, minimum: int, maximum: int = MAX_STEPS) -> int:
    """An int in [minimum, maximum] (a count of chains: at most 2**40, one
    value of a result each; of steps: at most 2**62)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None
    if v < minimum:
        raise ValueError(f"'{name}': must be >= {minimum}, got {v}")
    if v > maximum:
        raise ValueError(f"'{name}': must be <= {maximum}, got {v}")
    return v


def _label(i: int, start: int, stop: int) -> str:
    return f"shard {i} (chains [{start}, {stop}))"


def _host(a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


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
