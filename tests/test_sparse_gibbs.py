"""SparseIsing / SparsePotts: samples against exact enumeration (total
variation within a bound set by the sample count), observers against the
states, invariance (CPU levels, threads, CSR vs ELL, chain count), graph
constructors and colourings, and clear errors."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import _backend
from heatbath.ebm import SparseIsing, SparsePotts
from heatbath.ebm.graphs import (
    check_colouring,
    couplings_to_graph,
    dsatur_colouring,
    dtm_grid_edges,
    graph_from_edges,
    greedy_colouring,
)


def random_couplings(n, p, scale, seed):
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) < p, 1) * rng.normal(0, scale, (n, n))
    # a ring so that the graph is connected
    for i in range(n):
        j = (i + 1) % n
        a, b = min(i, j), max(i, j)
        if A[a, b] == 0:
            A[a, b] = rng.normal(0, scale)
    A = A.astype(np.float32).astype(np.float64)
    return A + A.T


def tv_bound(p, n, delta=1e-6):
    """E[TV] of n iid samples from p (normal approximation of each cell) plus
    McDiarmid's deviation sqrt(log(1/delta) / (2 n))."""
    p = np.asarray(p)
    return 0.5 * np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * n))) + np.sqrt(np.log(1 / delta) / (2 * n))


def empirical_tv(model, states_exact, logp, samples):
    """TV between the empirical distribution of the free nodes and the exact one."""
    free = np.flatnonzero(~model.clamped)
    base = model.K if model._potts else 2
    digits = samples[:, free] if model._potts else (samples[:, free] > 0).astype(np.int64)
    code = (digits * base ** np.arange(free.size)[::-1]).sum(axis=1)
    ex_digits = states_exact[:, free] if model._potts else (states_exact[:, free] > 0).astype(np.int64)
    ex_code = (ex_digits * base ** np.arange(free.size)[::-1]).sum(axis=1)
    counts = np.bincount(code, minlength=base**free.size) / samples.shape[0]
    p = np.zeros(base**free.size)
    p[ex_code] = np.exp(logp)
    return 0.5 * np.abs(counts - p).sum(), p


@pytest.mark.parametrize("storage", ["csr", "ell"])
def test_ising_matches_enumeration_with_clamps(storage):
    n = 12
    J = random_couplings(n, 0.3, 0.6, seed=1)
    b = np.random.default_rng(2).normal(0, 0.3, n)
    C = 20000
    m = SparseIsing(J, b, beta=1.0, n_chains=C, seed=11, storage=storage)
    m.clamp([3, 7], [1, -1])
    m.sweep(40)
    samples = m.state  # one independent sample per chain
    assert np.all(samples[:, 3] == 1) and np.all(samples[:, 7] == -1)
    states, logp, _ = m.enumerate_log_probs()
    tv, p = empirical_tv(m, states, logp, samples)
    assert tv < tv_bound(p, C), (tv, tv_bound(p, C))


def test_potts_matches_enumeration_with_clamps():
    n, K = 8, 3
    J = random_couplings(n, 0.4, 0.8, seed=3)
    b = np.random.default_rng(4).normal(0, 0.5, (n, K))
    C = 30000
    m = SparsePotts(J, K, b, beta=0.9, n_chains=C, seed=5, colouring="greedy")
    m.clamp([0], [2])
    m.sweep(40)
    samples = m.state
    states, logp, _ = m.enumerate_log_probs()
    tv, p = empirical_tv(m, states, logp, samples)
    assert tv < tv_bound(p, C), (tv, tv_bound(p, C))


def test_wrong_temperature_is_detected():
    # the oracle has power: the same chains at beta = 0.5 are far from the beta = 1 law
    n = 10
    J = random_couplings(n, 0.3, 1.0, seed=7)
    C = 20000
    m = SparseIsing(J, beta=0.5, n_chains=C, seed=3)
    m.sweep(30)
    states, logp, _ = m.enumerate_log_probs(beta=1.0)
    tv, p = empirical_tv(m, states, logp, m.state)
    assert tv > 3 * tv_bound(p, C)


def test_observers_match_states():
    J = random_couplings(9, 0.4, 0.7, seed=8)
    b = np.linspace(-0.5, 0.5, 9)
    m = SparseIsing(J, b, beta=0.7, n_chains=37, seed=2)
    r = m.sample(5, warmup=3, thin=2, nodes="all", pairs="edges", keep_states=True)
    S = r.states.astype(np.float64)  # (5, 37, 9)
    i, j, _ = m.graph.edges()
    np.testing.assert_allclose(r.node_mean, S.mean(axis=(0, 1)), atol=1e-12)
    np.testing.assert_allclose(r.pair_mean, (S[..., i] * S[..., j]).mean(axis=(0, 1)), atol=1e-12)
    np.testing.assert_allclose(r.energy, m.energy_of(S.reshape(-1, 9)).reshape(5, 37), atol=1e-9)
    np.testing.assert_allclose(r.magnetization, S.mean(axis=2), atol=1e-12)
    P = SparsePotts(J, 4, beta=0.7, n_chains=13, seed=2)
    rp = P.sample(3, nodes=[0, 5], pairs=[[1, 2]], keep_states=True)
    Sp = rp.states
    np.testing.assert_allclose(rp.energy, P.energy_of(Sp.reshape(-1, 9)).reshape(3, 13), atol=1e-9)
    want = np.stack([(Sp[..., [0, 5]] == k).mean(axis=(0, 1)) for k in range(4)], axis=1)
    np.testing.assert_allclose(rp.node_mean, want, atol=1e-12)
    np.testing.assert_allclose(rp.pair_mean, [(Sp[..., 1] == Sp[..., 2]).mean()], atol=1e-12)


def _dtm_model(chains, storage="csr", **kw):
    i, j, w, c = dtm_grid_edges(side=10, seed=1)
    return SparseIsing.from_edges(
        100, list(zip(i, j)), w, n_chains=chains, colouring=c, seed=4, storage=storage, **kw
    )


@pytest.mark.parametrize("level", heatbath.cpu_levels())
def test_invariance(level):
    with _backend.cpu_level_as(level), heatbath.threads(1):
        a = _dtm_model(300).sweep(5).state
    with _backend.cpu_level_as("base"), heatbath.threads(2):
        b = _dtm_model(300, storage="ell").sweep(5).state
    np.testing.assert_array_equal(a, b)
    # a chain's trajectory does not depend on the number of chains
    c = _dtm_model(37).sweep(5).state
    np.testing.assert_array_equal(a[:37], c)
    with _backend.cpu_level_as(level):
        P1 = SparsePotts(random_couplings(20, 0.2, 0.5, 1), 5, n_chains=150, seed=3).sweep(4).state
    with _backend.cpu_level_as("base"), heatbath.threads(2):
        P2 = SparsePotts(random_couplings(20, 0.2, 0.5, 1), 5, n_chains=150, seed=3).sweep(4).state
    np.testing.assert_array_equal(P1, P2)


@pytest.fixture
def field_tables_off():
    """Turns the AVX-512 field-table spin update off for the test (restored after)."""
    with _backend.cpu_level_as("avx512"):
        was = _backend._core.sparse_field_tables(-1)
        _backend._core.sparse_field_tables(0)
    yield
    with _backend.cpu_level_as("avx512"):
        _backend._core.sparse_field_tables(1 if was else 0)


def _mixed_degree_model(chains, **kw):
    # the 10x10 DTM grid (degree 12) plus a hub joined to 70 nodes (degree 70 > 64: the
    # masked-add path), and nodes of degree 5 and 1 (a short last group of four)
    i, j, w, _ = dtm_grid_edges(side=10, seed=2)
    rng = np.random.default_rng(5)
    hub = np.arange(70)
    i = np.concatenate([i, np.full(70, 100), [101, 101, 101, 101, 101, 102]])
    j = np.concatenate([j, hub, [3, 17, 44, 80, 99, 55]])
    w = np.concatenate([w, rng.normal(0, 0.3, 76)])
    # node 103 has no neighbour at all
    m = SparseIsing.from_edges(104, list(zip(i.tolist(), j.tolist())), w, bias=rng.normal(0, 0.2, 104), **kw)
    m.clamp([7, 60], [1, -1])
    return m


@pytest.mark.skipif("avx512" not in heatbath.cpu_levels(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize(
    "chains, scale", [(1, 1.0), (37, 1.0), (200, 1.0), (300, 1.0), (1000, 1.0), (300, 80.0)]
)
def test_field_tables_match_masked_adds(chains, scale, field_tables_off):
    # the AVX-512 update with field tables (where the CPU has VBMI and GFNI) gives the
    # states of the masked-add update and of the scalar base level, with per-chain betas;
    # at scale 80 the exponent -2 beta f passes the clamps of exp_f32 for some nodes
    beta = np.linspace(0.3, 1.4, chains) * scale
    runs = []
    for level, tables in (("avx512", 1), ("avx512", 0), ("base", 0)):
        with _backend.cpu_level_as(level):
            _backend._core.sparse_field_tables(tables)
            for threads in (1, 2):
                with heatbath.threads(threads):
                    runs.append(
                        _mixed_degree_model(chains, beta=beta, n_chains=chains, seed=9).sweep(6).state
                    )
    for r in runs[1:]:
        np.testing.assert_array_equal(runs[0], r)
    assert np.unique(runs[0]).size == 2  # not a frozen state


@pytest.mark.parametrize("K, chains", [(2, 1), (5, 15), (5, 16), (17, 17), (3, 130), (8, 300)])
def test_potts_levels_agree(K, chains):
    # the vectorized Potts update (8 or 16 chains per vector, scalar tail) gives the scalar
    # base level's states, with clamps and per-chain betas, at 1 and 2 threads
    J = random_couplings(24, 0.3, 0.6, seed=K)
    b = np.random.default_rng(chains).normal(0, 0.4, (24, K))

    def run(level, threads):
        with _backend.cpu_level_as(level), heatbath.threads(threads):
            m = SparsePotts(J, K, b, beta=np.linspace(0.4, 1.6, chains), n_chains=chains, seed=6)
            m.clamp([3], [K - 1])
            return m.sweep(5).state

    want = run("base", 1)
    for level in heatbath.cpu_levels():
        for threads in (1, 2):
            np.testing.assert_array_equal(run(level, threads), want)
    assert np.unique(want).size > 1


def test_chain_offset_shards_reproduce_the_run():
    # chains [256, 768) run as their own object equal rows 256..768 of the whole run
    whole = _dtm_model(1000).sweep(4).state
    part = _dtm_model(512, chain_offset=256).sweep(4).state
    np.testing.assert_array_equal(part, whole[256:768])
    tail = _dtm_model(232, chain_offset=768).sweep(4).state
    np.testing.assert_array_equal(tail, whole[768:])
    J = random_couplings(20, 0.2, 0.5, 1)
    P = SparsePotts(J, 4, n_chains=600, seed=3).sweep(3).state
    Q = SparsePotts(J, 4, n_chains=344, seed=3, chain_offset=256).sweep(3).state
    np.testing.assert_array_equal(Q, P[256:])
    with pytest.raises(ValueError, match="chain_offset"):
        _dtm_model(10, chain_offset=100)


def test_state_is_a_copy():
    # one Potts chain: the transposed state is already contiguous, and must still be copied
    m = SparsePotts(random_couplings(6, 0.5, 0.5, 2), 3, n_chains=1, seed=1)
    before = m.state
    r = m.sample(5, warmup=0, thin=3, keep_states=True)
    assert not np.shares_memory(before, m._s)
    assert len({r.states[k].tobytes() for k in range(5)}) > 1  # records differ from each other


def test_set_parameters_matches_a_rebuilt_graph():
    i, j, w, c = dtm_grid_edges(side=10, seed=1)
    rng = np.random.default_rng(0)
    w2 = rng.standard_normal(w.size)
    a = SparseIsing(graph_from_edges(100, i, j, w), n_chains=64, colouring=c, seed=2)
    a.set_parameters(w2)
    b = SparseIsing(graph_from_edges(100, i, j, w2), n_chains=64, colouring=c, seed=2)
    np.testing.assert_array_equal(a.graph.weights, b.graph.weights)
    np.testing.assert_array_equal(a.graph.dense(), b.graph.dense())
    np.testing.assert_array_equal(a.sweep(3).state, b.sweep(3).state)
    with pytest.raises(ValueError, match="edge_weights"):
        a.set_parameters(np.full(w.size, np.nan))


def test_constructors_agree():
    nx = pytest.importorskip("networkx")
    scipy_sparse = pytest.importorskip("scipy.sparse")
    J = random_couplings(8, 0.5, 0.5, seed=9)
    b = np.arange(8) / 10.0
    ref = SparseIsing(J, b, n_chains=50, seed=1, colouring="greedy").sweep(3).state
    G = nx.Graph()
    for v in range(8):
        G.add_node(v, bias=b[v])
    for i, j in zip(*np.nonzero(np.triu(J))):
        G.add_edge(int(i), int(j), weight=J[i, j])
    a = SparseIsing.from_networkx(G, n_chains=50, seed=1, colouring="greedy").sweep(3).state
    s = SparseIsing(scipy_sparse.csr_matrix(J), b, n_chains=50, seed=1, colouring="greedy").sweep(3).state
    names = [f"n{k}" for k in range(8)]
    iu, ju = np.nonzero(np.triu(J))
    t = (
        SparseIsing.from_edges(
            names,
            [(names[i], names[j]) for i, j in zip(iu, ju)],
            J[iu, ju],
            bias=b,
            n_chains=50,
            seed=1,
            colouring="greedy",
        )
        .sweep(3)
        .state
    )
    for x in (a, s, t):
        np.testing.assert_array_equal(x, ref)


def test_colourings_are_proper():
    i, j, w, c = dtm_grid_edges(side=70)
    g = graph_from_edges(4900, i, j, w)
    assert np.all(g.degrees == 12)
    check_colouring(g, c)
    assert c.max() == 1
    for col in (dsatur_colouring(g), greedy_colouring(g)):
        check_colouring(g, col)
    g2 = couplings_to_graph(random_couplings(30, 0.3, 1.0, 2))
    d = dsatur_colouring(g2)
    check_colouring(g2, d)
    m = SparseIsing(g2, colouring=[np.flatnonzero(d == k) for k in range(d.max() + 1)], seed=0)
    np.testing.assert_array_equal(m.colours, d)


def test_fit_fully_visible_recovers_moments():
    # data from a known sparse machine; fit a zero-initialised machine on the same graph
    J = random_couplings(8, 0.3, 0.5, seed=12)
    b = np.random.default_rng(1).normal(0, 0.3, 8)
    truth = SparseIsing(J, b, n_chains=6000, seed=1)
    data = (truth.sweep(30).state > 0).astype(np.uint8)
    model = SparseIsing(J * 0.0 + (J != 0) * 1e-3, n_chains=2000, seed=2)
    model.fit(data, n_iter=60, lr=0.1, n_samples=4, sweeps=2)
    m1, m2 = model.moments(20, warmup=10)
    S = 2.0 * data - 1
    i, j, _ = model.graph.edges()
    assert np.abs(m1 - S.mean(axis=0)).max() < 0.06
    assert np.abs(m2 - (S[:, i] * S[:, j]).mean(axis=0)).max() < 0.06


def test_errors():
    with pytest.raises(ValueError, match="'couplings'.*square"):
        SparseIsing(np.zeros((3, 4)))
    A = np.zeros((3, 3))
    A[0, 1] = 1.0
    with pytest.raises(ValueError, match="'couplings'.*symmetric"):
        SparseIsing(A)
    with pytest.raises(ValueError, match="'couplings'.*diagonal"):
        SparseIsing(np.eye(3))
    J = random_couplings(6, 0.5, 1.0, seed=0)
    with pytest.raises(ValueError, match="'colouring'.*proper"):
        SparseIsing(J, colouring=np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="'colouring'"):
        SparseIsing(J, colouring=[[0, 1, 2]])
    with pytest.raises(ValueError, match="'bias'"):
        SparseIsing(J, bias=np.zeros(5))
    m = SparseIsing(J, n_chains=2, seed=0)
    with pytest.raises(TypeError, match="'state'"):
        m.state = np.ones((2, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="'state'"):
        m.state = np.zeros((2, 6), dtype=np.int8)
    with pytest.raises(ValueError, match="'state'"):
        m.state = np.ones((3, 6), dtype=np.int8)
    P = SparsePotts(J, 3, n_chains=2, seed=0)
    with pytest.raises(ValueError, match="'state'"):
        P.state = np.full((2, 6), 3, dtype=np.uint8)
    with pytest.raises(ValueError, match="'K'"):
        SparsePotts(J, 65)
    with pytest.raises(ValueError, match="'edges'"):
        SparseIsing.from_edges(3, [(0, 0)], [1.0])
    with pytest.raises(ValueError, match="'weights'"):
        SparseIsing.from_edges(3, [(0, 1)], [1.0, 2.0])
