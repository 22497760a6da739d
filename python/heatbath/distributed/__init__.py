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

from .ais import rbm_ais, sparse_ais
from .chains import sample_chains
from .diffusion import sample_dpm
from .graphs import gibbs_lattice, gibbs_sparse, shard_model
from .plan import ShardError, Totals, shards
from .tempering import parallel_tempering

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
