"""heatbath.distributed on a LocalCluster with worker processes (loopback
only): sharded results equal to the bit to the in-process run for 1, 2 and 4
workers and several chunk sizes, after a killed worker, and clear errors."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from heatbath import distributed as hd  # noqa: E402
from heatbath import random as hr  # noqa: E402
from heatbath.diffusion import GaussianDPM  # noqa: E402

# the shard functions below travel to the workers by value (tests/ is not importable there)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

N = 1000
SEED = 1234


def normal_chains(start: int, stop: int, seed: int) -> np.ndarray:
    """Chains [start, stop) of a (N, 3) float32 normal draw: row i is elements 3i..3i+2."""
    return hr.normal((stop - start, 3), seed, 3 * start, dtype="float32")


def two_outputs(start: int, stop: int, seed: int) -> dict:
    x = hr.normal((stop - start, 4), seed, 4 * start, dtype="float64")
    return {"x": x, "e": (x * x).sum(axis=1) - 3.0}


def slow_chains(marks: str, start: int, stop: int, seed: int) -> np.ndarray:
    """Leaves a mark (shard start, worker pid), then works 0.4 s."""
    open(os.path.join(marks, f"{start}-{os.getpid()}"), "w").close()
    time.sleep(0.4)
    return normal_chains(start, stop, seed)


def raises_on_second(start: int, stop: int, seed: int) -> np.ndarray:
    if start >= 100:
        raise ValueError("boom")
    return normal_chains(start, stop, seed)


def wrong_shape(start: int, stop: int, seed: int) -> np.ndarray:
    return np.zeros((stop - start + 1, 2))


def _cluster(n_workers: int):
    cluster = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        host="127.0.0.1", silence_logs=50,
    )
    client = distributed.Client(cluster)
    return cluster, client


@pytest.fixture(scope="module", params=[1, 2, 4])
def client(request):
    cluster, client = _cluster(request.param)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def dpm():
    return GaussianDPM(dim=2, T=12, net="rbf", seed=3)


def test_in_process_reference_is_the_plain_draw():
    ref = hr.normal((N, 3), SEED, dtype="float32")
    for chunk in (1000, 333, 7):
        assert np.array_equal(hd.sample_chains(None, normal_chains, N, SEED, chunk=chunk), ref)


@pytest.mark.parametrize("chunk", [None, 1000, 250, 97])
def test_concat_bit_equal(client, chunk):
    ref = hd.sample_chains(None, normal_chains, N, SEED)
    got = hd.sample_chains(client, normal_chains, N, SEED, chunk=chunk)
    assert got.dtype == np.float32 and got.shape == (N, 3)
    assert np.array_equal(got, ref)


def test_reductions_bit_equal(client):
    ref_x = hd.sample_chains(None, two_outputs, N, SEED)
    for chunk in (N, 128, 33):
        mv = hd.sample_chains(client, two_outputs, N, SEED, chunk=chunk, reduce="mean_var")
        lse = hd.sample_chains(client, two_outputs, N, SEED, chunk=chunk, reduce="logsumexp")
        mv0 = hd.sample_chains(None, two_outputs, N, SEED, chunk=N, reduce="mean_var")
        lse0 = hd.sample_chains(None, two_outputs, N, SEED, chunk=N, reduce="logsumexp")
        for k in ("x", "e"):
            assert mv[k]["n"] == N
            assert np.array_equal(mv[k]["mean"], mv0[k]["mean"])
            assert np.array_equal(mv[k]["var"], mv0[k]["var"])
            assert np.array_equal(lse[k], lse0[k])
        assert isinstance(lse["e"], float)
    # and they are the mean, variance and log-sum-exp (to rounding)
    x = ref_x["x"]
    np.testing.assert_allclose(mv0["x"]["mean"], x.mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(mv0["x"]["var"], x.var(axis=0, ddof=1), rtol=1e-13)
    e = ref_x["e"]
    assert math.isclose(lse0["e"], e.max() + math.log(np.exp(e - e.max()).sum()), rel_tol=1e-14)


def test_exact_sums_are_exact():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(500, 2)) * 10.0 ** rng.integers(-300, 300, size=(500, 1)),
                        [[5e-324, -0.0]], [[1.7e308, 2.0**-1000]]])
    from fractions import Fraction

    got = hd.chains._exact_column_sums(x)
    for c in range(2):
        want = sum(Fraction(float(v)) for v in x[:, c]) * 2**hd.chains._SCALE_BITS
        assert want.denominator == 1 and got[c] == want.numerator


def test_dpm_shards_equal_one_process(client, dpm):
    ref = dpm.sample(300, seed=5)
    assert np.array_equal(hd.sample_dpm(None, dpm, 300, seed=5, chunk=64), ref)
    assert np.array_equal(hd.sample_dpm(client, dpm, 300, seed=5, chunk=71), ref)


def test_dpm_shard_argument(dpm):
    ref = dpm.sample(50, seed=2)
    assert np.array_equal(dpm.sample(20, seed=2, shard=(30, 50)), ref[30:])
    assert np.array_equal(dpm.sample(50, seed=2, shard=(0, 50)), ref)
    with pytest.raises(ValueError, match="'shard'"):
        dpm.sample(20, seed=2, shard=(40, 50))
    with pytest.raises(TypeError, match="'shard'"):
        dpm.sample(20, seed=2, shard=30)


def test_killed_worker_gives_the_same_result(tmp_path):
    import functools

    cluster, client = _cluster(2)
    try:
        ref = hd.sample_chains(None, normal_chains, N, SEED)
        victim = sorted(client.run(os.getpid).values())[0]

        def kill_when_busy():  # once the victim has started a shard, kill it in the middle of it
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(f.endswith(f"-{victim}") for f in os.listdir(tmp_path)):
                    break
                time.sleep(0.01)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        fn = functools.partial(slow_chains, str(tmp_path))
        got = hd.sample_chains(client, fn, N, SEED, chunk=100)  # 10 shards of 0.4 s on 2 workers
        killer.join()
        assert np.array_equal(got, ref)
        runs: dict = {}
        for f in os.listdir(tmp_path):
            start, pid = map(int, f.split("-"))
            runs.setdefault(start, []).append(pid)
        assert sorted(runs) == list(range(0, N, 100))
        # a shard started on the victim was computed again elsewhere
        assert any(victim in p and len(p) > 1 for p in runs.values())
        client.wait_for_workers(2, timeout=30)
        assert victim not in client.run(os.getpid).values()
    finally:
        client.close()
        cluster.close()


def test_errors_name_the_shard(client):
    with pytest.raises(hd.ShardError, match=r"shard 1 \(chains \[100, 200\)\).*ValueError: boom"):
        hd.sample_chains(client, raises_on_second, 300, SEED, chunk=100)
    with pytest.raises(hd.ShardError, match=r"shard 0 \(chains \[0, 10\)\).*leading dimension of 10"):
        hd.sample_chains(client, wrong_shape, 10, SEED, chunk=10)
    with pytest.raises(ValueError, match="'chunk': must be >= 1, got 0"):
        hd.sample_chains(client, normal_chains, 10, SEED, chunk=0)
    with pytest.raises(ValueError, match="'chunk'"):
        hd.sample_chains(None, normal_chains, 10, SEED, chunk=-3)
    with pytest.raises(ValueError, match="'n_chains'"):
        hd.sample_chains(client, normal_chains, 0, SEED)
    with pytest.raises(ValueError, match="'reduce'"):
        hd.sample_chains(client, normal_chains, 10, SEED, reduce="sum")
    with pytest.raises(TypeError, match="'fn'"):
        hd.sample_chains(client, 3, 10, SEED)
    with pytest.raises(hd.ShardError, match=r"shard 1 \(chains \[100, 200\)\)"):
        hd.sample_chains(None, raises_on_second, 300, SEED, chunk=100)


def test_closed_client():
    cluster, client = _cluster(1)
    client.close()
    cluster.close()
    closed = r"'client': the Dask client is closed; cannot submit shard 0 \(chains"
    with pytest.raises(hd.ShardError, match=closed):
        hd.sample_chains(client, normal_chains, 10, SEED, chunk=5)
    with pytest.raises(TypeError, match="'client'"):
        hd.sample_chains(object(), normal_chains, 10, SEED)


def _rbm(nv: int = 20, nh: int = 12, seed: int = 0, dtype: str = "float32"):
    from heatbath.ebm import BernoulliRBM

    rng = np.random.default_rng(seed)
    r = BernoulliRBM(n_components=nh, random_state=seed, dtype=dtype)
    r.components_ = rng.normal(0, 1.0, (nh, nv)).astype(dtype)
    r.intercept_hidden_ = rng.normal(0, 1, nh).astype(dtype)
    r.intercept_visible_ = rng.normal(0, 1, nv).astype(dtype)
    r.n_features_in_ = nv
    return r


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rbm_ais_one_block_equals_ebm_ais(dtype):
    from heatbath.ebm import ais

    r = _rbm(dtype=dtype)
    data = (np.random.default_rng(1).random((50, 20)) < 0.4).astype(np.float64)
    ref = ais.rbm_ais(r, n_runs=40, betas=60, data=data, seed=9)
    got = hd.rbm_ais(None, r, 40, seed=9, betas=60, data=data, block=40)
    assert np.array_equal(got.log_weights, ref.log_weights)
    assert (got.log_z, got.stderr, got.ess) == (ref.log_z, ref.stderr, ref.ess)


def test_rbm_ais_sharded_bit_equal(client):
    r = _rbm()
    ref = hd.rbm_ais(None, r, 170, seed=4, betas=40, block=10)
    for chunk in (None, 20, 170):
        got = hd.rbm_ais(client, r, 170, seed=4, betas=40, block=10, chunk=chunk)
        assert np.array_equal(got.log_weights, ref.log_weights)
        assert got.log_z == ref.log_z
    exact = r.log_partition("exact").log_z
    assert abs(ref.log_z - exact) < 4 * ref.stderr + 0.05
    with pytest.raises(ValueError, match="'chunk': must be a multiple of 'block'"):
        hd.rbm_ais(client, r, 170, seed=4, betas=40, block=10, chunk=15)


@pytest.fixture(scope="module")
def swissroll_run(tmp_path_factory):
    from heatbath.cli import main

    out = tmp_path_factory.mktemp("runs") / "sr"
    assert main(["train", "swissroll", "--steps", "20", "--T", "8", "--batch-size", "64", "--eval-n", "20",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_cli_sample_on_scheduler(client, swissroll_run, tmp_path, capsys):
    from heatbath.cli import main

    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert main(["sample", str(swissroll_run), "--n", "60", "--seed", "3", "--save", str(a), "--quiet"]) == 0
    assert main(["sample", str(swissroll_run), "--n", "60", "--seed", "3", "--save", str(b), "--quiet",
                 "--scheduler", client.scheduler.address, "--chunk", "7"]) == 0
    assert "on the Dask cluster at" in capsys.readouterr().out
    assert np.array_equal(np.load(a), np.load(b))
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(swissroll_run), "--n", "5", "--scheduler", "tcp://127.0.0.1:1",
              "--connect-timeout", "0.5"])
    assert exc.value.code == 2
    assert "'--scheduler': cannot reach a Dask scheduler" in capsys.readouterr().err


def test_inpainting_on_scheduler(client, swissroll_run, capsys):
    from heatbath.cli import main
    from heatbath.diffusion import tasks

    model, _ = tasks.load_run(swissroll_run)
    known = np.random.default_rng(0).standard_normal((45, 2))
    mask = np.array([True, False])
    ref = model.sample(45, seed=5, mask=mask, known=known)
    for chunk in (None, 8, 45):
        got = hd.sample_dpm(client, model, 45, seed=5, chunk=chunk, mask=mask, known=known)
        assert np.array_equal(got, ref)
    rowmask = np.random.default_rng(1).random((45, 2)) < 0.5
    ref2 = model.sample(45, seed=5, mask=rowmask, known=known)
    assert np.array_equal(hd.sample_dpm(client, model, 45, seed=5, chunk=10, mask=rowmask, known=known), ref2)
    with pytest.raises(ValueError, match="'known'"):
        hd.sample_dpm(client, model, 45, seed=5, mask=mask, known=known[:3])
    # the command prints the same completion error on the cluster as in one process
    args = ["inpaint", str(swissroll_run), "--n", "30", "--seed", "2"]
    assert main(args) == 0
    one = capsys.readouterr().out
    assert main(args + ["--scheduler", client.scheduler.address, "--chunk", "7"]) == 0
    assert capsys.readouterr().out == one


# ---------------------------------------------------------------------------
# lattice and sparse-graph Gibbs, AIS and tempering
# ---------------------------------------------------------------------------


def _lattice(shape=(8, 64), **kw):
    from heatbath.ebm import IsingLattice

    return IsingLattice(shape, beta=kw.pop("beta", 0.42), h=0.05, seed=21, **kw)


def _sparse(potts: bool = False, beta: float = 0.6):
    from heatbath.ebm import SparseIsing, SparsePotts

    rng = np.random.default_rng(5)
    n = 16
    J = np.triu((rng.random((n, n)) < 0.2) * rng.normal(0, 0.8, (n, n)), 1)
    J = J + J.T
    if potts:
        return SparsePotts(J, 3, rng.normal(0, 0.3, (n, 3)), beta=beta, seed=8)
    return SparseIsing(J, rng.normal(0, 0.3, n), beta=beta, seed=8)


def test_gibbs_lattice_bit_equal(client):
    lat = _lattice(beta=np.linspace(0.3, 0.6, 9), n_chains=9)
    whole = hd.shard_model(lat, 9)
    ref = whole.sample(6, warmup=3, thin=2)
    mv0 = hd.gibbs_lattice(None, lat, 9, 6, warmup=3, thin=2, reduce="mean_var")
    for chunk in (None, 2, 9):
        got = hd.gibbs_lattice(client, lat, 9, 6, warmup=3, thin=2, chunk=chunk, keep_states=True)
        assert np.array_equal(got["energy"], ref.energy)
        assert np.array_equal(got["magnetization"], ref.magnetization)
        assert np.array_equal(got["spins"], whole.spins)
        mv = hd.gibbs_lattice(client, lat, 9, 6, warmup=3, thin=2, chunk=chunk, reduce="mean_var",
                              observers="energy")
        assert list(mv) == ["energy"] and mv["energy"]["n"] == 9
        assert np.array_equal(mv["energy"]["mean"], mv0["energy"]["mean"])
        assert np.array_equal(mv["energy"]["var"], mv0["energy"]["var"])
    mean_m = ref.magnetization.mean(axis=1)
    np.testing.assert_allclose(mv0["magnetization"]["mean"], mean_m, rtol=0, atol=1e-15)


@pytest.mark.parametrize("potts", [False, True])
def test_gibbs_sparse_bit_equal(client, potts):
    m = _sparse(potts)
    n = 600
    ref = hd.shard_model(m, n).sample(4, warmup=2, nodes="all", pairs="edges", keep_states=True)
    for chunk in (None, 256):
        got = hd.gibbs_sparse(client, m, n, 4, warmup=2, nodes="all", pairs="edges", keep_states=True,
                              chunk=chunk)
        for k in ("energy", "node_mean", "pair_mean", "states") + (() if potts else ("magnetization",)):
            assert np.array_equal(got[k], getattr(ref, k)), k
    mv = hd.gibbs_sparse(client, m, n, 4, warmup=2, nodes=[0, 3], reduce="mean_var", chunk=256)
    np.testing.assert_allclose(mv["energy"]["mean"], ref.energy.mean(axis=1), rtol=1e-14)
    assert np.array_equal(mv["node_mean"], ref.node_mean[[0, 3]])


def test_sparse_ais_bit_equal(client):
    from heatbath.ebm.graph_annealing import exact_log_z, graph_ais

    m = _sparse(beta=0.5)
    ref = graph_ais(hd.shard_model(m, 520), betas=40)
    for chunk in (None, 256):
        got = hd.sparse_ais(client, m, 520, betas=40, chunk=chunk)
        assert np.array_equal(got.log_weights, ref.log_weights)
        assert (got.log_z, got.stderr, got.ess) == (ref.log_z, ref.stderr, ref.ess)
    assert abs(ref.log_z - exact_log_z(m).log_z) < 5 * ref.stderr + 0.05
    lse0 = hd.sparse_ais(None, m, 520, betas=40, keep_weights=False)
    lse = hd.sparse_ais(client, m, 520, betas=40, keep_weights=False, chunk=256)
    assert (lse.log_z, lse.stderr, lse.ess) == (lse0.log_z, lse0.stderr, lse0.ess) and lse.log_weights is None
    assert math.isclose(lse.log_z, ref.log_z, rel_tol=1e-13)
    assert math.isclose(lse.stderr, ref.stderr, rel_tol=1e-9) and math.isclose(lse.ess, ref.ess, rel_tol=1e-9)
    lat = _lattice()
    ref = graph_ais(hd.shard_model(lat, 5), betas=20)
    assert np.array_equal(hd.sparse_ais(client, lat, 5, betas=20, chunk=2).log_weights, ref.log_weights)


def test_parallel_tempering_bit_equal(client):
    from heatbath.ebm.graph_annealing import graph_parallel_tempering

    lat = _lattice((4, 6))
    betas = [0.3, 0.36, 0.42, 0.48]
    ref = graph_parallel_tempering(hd.shard_model(lat, 12), betas, 4, warmup=3, thin=2, keep_states=True)
    for chunk in (None, 5):
        got = hd.parallel_tempering(client, lat, 12, betas, 4, warmup=3, thin=2, keep_states=True,
                                    chunk=chunk)
        assert np.array_equal(got.energy, ref.energy)
        assert np.array_equal(got.states, ref.states)
        assert np.array_equal(got.acceptance, ref.acceptance)
    assert ref.acceptance.max() > 0  # swaps happened
    m = _sparse()
    ref = graph_parallel_tempering(hd.shard_model(m, 512), [0.3, 0.6], 3, warmup=2)
    got = hd.parallel_tempering(client, m, 512, [0.3, 0.6], 3, warmup=2, chunk=256)
    assert np.array_equal(got.energy, ref.energy) and np.array_equal(got.acceptance, ref.acceptance)


def test_graph_wrappers_errors(client):
    m = _sparse()
    with pytest.raises(ValueError, match="'chunk': must be a multiple of 256 for SparseIsing"):
        hd.gibbs_sparse(client, m, 600, 2, chunk=100)
    with pytest.raises(ValueError, match="'chunk': must be a multiple of 256"):
        hd.parallel_tempering(client, m, 512, [0.3, 0.6], 2, chunk=100)
    with pytest.raises(ValueError, match="'chain_offset': must be a multiple of 256"):
        hd.shard_model(m, 600, 100)
    with pytest.raises(ValueError, match="'chunk': must be >= 1, got 0"):
        hd.gibbs_lattice(client, _lattice(), 4, 2, chunk=0)
    with pytest.raises(ValueError, match="'model': n_chains \\(10\\) must be a multiple of len\\(betas\\)"):
        hd.parallel_tempering(client, _lattice(), 10, [0.2, 0.3, 0.4], 2)
    with pytest.raises(TypeError, match="'model'"):
        hd.gibbs_sparse(client, _lattice(), 4, 2)
    with pytest.raises(ValueError, match="'observers'"):
        hd.gibbs_lattice(client, _lattice(), 4, 2, observers=("entropy",))
    bad = _lattice()
    bad.init = "sideways"  # the shards fail when they build their lattices
    raised = r"shard 0 \(chains \[0, 2\)\): the shard function raised ValueError: 'init'"
    with pytest.raises(hd.ShardError, match=raised):
        hd.gibbs_lattice(client, bad, 4, 2, chunk=2)
    with pytest.raises(hd.ShardError, match=r"shard 0 \(chains \[0, 2\)\): building the model raised"):
        hd.parallel_tempering(client, bad, 4, [0.2, 0.3], 2, chunk=2)


def test_graph_wrappers_closed_client():
    cluster, client = _cluster(1)
    client.close()
    cluster.close()
    closed = r"'client': the Dask client is closed; cannot submit shard 0 \(chains"
    with pytest.raises(hd.ShardError, match=closed):
        hd.gibbs_lattice(client, _lattice(), 4, 2, chunk=2)
    with pytest.raises(hd.ShardError, match=closed):
        hd.parallel_tempering(client, _lattice(), 4, [0.2, 0.3], 2)
    with pytest.raises(hd.ShardError, match=closed):
        hd.sparse_ais(client, _sparse(), 300, betas=5)


def test_cli_ising_on_scheduler(client, capsys):
    from heatbath.cli import main

    args = ["ising", "--size", "16", "--chains", "5", "--sweeps", "40", "--warmup", "5", "--seed", "3"]
    assert main(args) == 0
    one = capsys.readouterr().out
    assert main(args + ["--scheduler", client.scheduler.address, "--chunk", "2"]) == 0
    two = capsys.readouterr().out
    assert "on the Dask cluster at" in two

    def values(out):  # the table rows: energy and |m| with their errors
        return [ln for ln in out.splitlines() if ln.startswith(("energy per spin", "|magnetization|"))]

    assert values(one) == values(two) and len(values(one)) == 2


def test_tempering_survives_a_killed_worker():
    """A worker killed between rounds of parallel tempering: its shard's rounds
    are recomputed from the task chain and the result is unchanged."""
    from heatbath.ebm.graph_annealing import graph_parallel_tempering

    lat = _lattice((8, 8))
    betas = [0.3, 0.36, 0.42, 0.48]
    ref = graph_parallel_tempering(hd.shard_model(lat, 16), betas, 40, warmup=5, keep_states=True)
    cluster, client = _cluster(2)
    try:
        victim = sorted(client.run(os.getpid).values())[0]
        killed = threading.Event()

        def kill_soon():
            time.sleep(0.6)
            os.kill(victim, signal.SIGKILL)
            killed.set()

        killer = threading.Thread(target=kill_soon)
        t0 = time.monotonic()
        killer.start()
        got = hd.parallel_tempering(client, lat, 16, betas, 40, warmup=5, keep_states=True, chunk=8)
        elapsed = time.monotonic() - t0
        killer.join()
        assert killed.is_set() and elapsed > 0.6, elapsed  # the worker died while the rounds ran
        print(f"tempering with a killed worker: {elapsed:.2f} s")
        assert np.array_equal(got.energy, ref.energy)
        assert np.array_equal(got.states, ref.states)
        assert np.array_equal(got.acceptance, ref.acceptance)
    finally:
        client.close()
        cluster.close()
