"""heatbath.distributed: a 2-worker LocalCluster (processes, one thread each,
loopback, glibc's malloc thresholds raised: see the comment in section_dist)
against the one-process run of the same call (``client=None``, heatbath's
default threads), on real workloads: ancestral samples of a
Swiss-roll-sized GaussianDPM, AIS runs of an RBM, Gibbs sweeps of Ising
lattices and of a sparse Ising graph (observers and moments reduced on the
workers), and parallel tempering of a lattice with the replicas on the two
workers (one round trip of energies per sweep). Prints the speed-up
(efficiency; the ceiling on 2 cores is 2x), checks that the results are equal
to the bit, and measures the overhead per shard with shards that do nothing.

Needs the ``dist`` extra (``dask[distributed]``); the section is skipped
without it."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import interleaved  # noqa: E402


def _empty_shard(start: int, stop: int, seed: int) -> np.ndarray:
    return np.zeros((stop - start, 1), dtype=np.float32)


def _workloads():
    from heatbath import distributed as hd
    from heatbath.diffusion import GaussianDPM
    from heatbath.ebm import BernoulliRBM, IsingLattice, SparseIsing
    from heatbath.ebm.graphs import graph_from_edges

    dpm = GaussianDPM(dim=2, T=40, net="rbf", seed=0)
    rng = np.random.default_rng(0)
    nv, nh = 196, 100
    rbm = BernoulliRBM(n_components=nh, random_state=0)
    rbm.components_ = rng.normal(0, 0.3, (nh, nv)).astype(np.float32)
    rbm.intercept_hidden_ = np.zeros(nh, np.float32)
    rbm.intercept_visible_ = np.zeros(nv, np.float32)
    rbm.n_features_in_ = nv
    lat = IsingLattice((256, 256), beta=0.44, seed=1)
    n = 2000
    i, j = rng.integers(0, n, 6000), rng.integers(0, n, 6000)
    e = np.unique(np.sort(np.stack([i[i != j], j[i != j]], 1), axis=1), axis=0)
    graph = SparseIsing(graph_from_edges(n, e[:, 0], e[:, 1], rng.normal(0, 0.5, len(e)), "edges"), beta=0.8,
                        seed=2)
    pt_lat = IsingLattice((2048, 2048), seed=3, init="up")  # a sweep of 16 lattices: ~40 ms on one core
    pt_betas = np.linspace(0.43, 0.45, 4)
    return {
        "gibbs_lattice, 16 x 256^2 lattices, 4,000 sweeps": (
            lambda c: hd.gibbs_lattice(c, lat, 16, 4000, thin=10, chunk=8), lambda r: r["energy"]),
        "gibbs_sparse, 1,024 chains, 2,000 nodes, 20 x 10 sweeps": (
            lambda c: hd.gibbs_sparse(c, graph, 1024, 20, thin=10, nodes="all", chunk=512),
            lambda r: np.concatenate([r["energy"].ravel(), r["node_mean"]])),
        "parallel_tempering, 4 x 8 chains of 2048^2, 40 sweeps": (
            lambda c: hd.parallel_tempering(c, pt_lat, 32, pt_betas, 40, chunk=16), lambda r: r.energy),
        "GaussianDPM.sample, 2,000 samples, T = 40, RBF net": (
            lambda c: hd.sample_dpm(c, dpm, 2000, seed=1, chunk=250), lambda r: r),
        "RBM AIS, 400 runs, 196x100, 1,000 temperatures": (
            lambda c: hd.rbm_ais(c, rbm, 400, seed=1, betas=1000, block=50), lambda r: r.log_weights),
    }


def section_dist(repeat: int) -> None:
    try:
        import cloudpickle
        import distributed
    except ImportError:
        print("\n== dist: skipped (pip install 'heatbath[dist]' for dask.distributed) ==")
        return
    from heatbath import distributed as hd

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import bench/
    repeat = max(1, min(repeat, 5))
    import dask

    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also freezes glibc's mmap
    # threshold: every temporary array over 128 KiB is then mmap'ed and faulted in anew, and the DPM
    # sampler (many small numpy temporaries) runs 3-4x slower on a worker than in this process.
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    env.update(MALLOC_TRIM_THRESHOLD_=1 << 28, MALLOC_MMAP_THRESHOLD_=1 << 28)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", host="127.0.0.1", silence_logs=50)
    client = distributed.Client(cluster)
    try:
        print(f"\n== dist: 2-worker LocalCluster (1 thread each) vs one process, {os.cpu_count()} CPUs "
              f"(median of {repeat} interleaved runs) ==")
        print("(efficiency: speed-up over the one-process run on 1 heatbath thread, as each worker, / 2; "
              "the last column: speed-up over the one-process run on all threads)")
        print(f"{'workload':56s} {'1 proc s':>8s} {'1 thr s':>8s} {'2 wkrs s':>8s} {'speed-up':>8s} "
              f"{'efficiency':>10s} {'vs all thr':>10s} {'bit-equal':>9s}")
        import heatbath

        def one_thread(run):
            with heatbath.threads(1):
                return run(None)

        for name, (run, key) in _workloads().items():
            equal = bool(np.array_equal(key(run(None)), key(run(client))))
            t = interleaved({"one": lambda: run(None), "one1": lambda: one_thread(run),
                             "two": lambda: run(client)}, repeat)
            s1, s = t["one1"] / t["two"], t["one"] / t["two"]
            print(f"{name:56s} {t['one']:8.3f} {t['one1']:8.3f} {t['two']:8.3f} {s1:7.2f}x {s1 / 2:9.0%} "
                  f"{s:9.2f}x {str(equal):>9s}")
        n_shards = 200
        for label, c in (("2 workers", client), ("in process", None)):
            hd.sample_chains(c, _empty_shard, n_shards, 0, chunk=1)
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                hd.sample_chains(c, _empty_shard, n_shards, 0, chunk=1)
                ts.append(time.perf_counter() - t0)
            med = sorted(ts)[len(ts) // 2]
            print(f"overhead per shard ({label}, {n_shards} empty shards, concat): "
                  f"{med / n_shards * 1e3:.3f} ms")
    finally:
        client.close()
        cluster.close()


SECTIONS = {"dist": section_dist}
