"""Sparse-graph observers (energy, magnetization, node and pair moments)
against numpy references computed from the unpacked states, at every CPU
level and thread count, for chain counts that are and are not multiples of 32.

Energies are float64 sums whose order differs from the reference: they must
agree within 1e-12 of the sum of the magnitudes of their terms. Moments are
integer counts: exact (compared after the same
division by the record count). The levels sum every chain's terms in the same order
and must agree to the bit."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import _backend
from heatbath.ebm import SparseIsing, SparsePotts
from heatbath.ebm.graphs import dtm_grid_edges

LEVELS = heatbath.cpu_levels()


def random_couplings(n, p, seed):
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) < p, 1) * rng.normal(0, 1, (n, n))
    A = A.astype(np.float32).astype(np.float64)
    return A + A.T


def dtm_couplings(side, seed):
    i, j, w, c = dtm_grid_edges(side=side, seed=seed)
    n = side * side
    A = np.zeros((n, n))
    A[i, j] = w
    A[j, i] = w
    return A, c


def ising_reference(S, J, b):
    """energy, magnetization, node sums, pair sums of states S (R, C, n) +/-1."""
    S = S.astype(np.float64)
    e = -0.5 * ((S @ J) * S).sum(axis=-1) - S @ np.asarray(b, dtype=np.float64)
    i, j = np.nonzero(np.triu(J, 1))
    return e, S.mean(axis=2), S.sum(axis=(0, 1)), (S[..., i] * S[..., j]).sum(axis=(0, 1)), (i, j)


def energy_scale(J, b):
    return 1e-12 * (0.5 * np.abs(J).sum() + np.abs(b).sum())


def sample_ising(J, b, chains, level, threads, storage="csr", colouring="dsatur"):
    with _backend.cpu_level_as(level), heatbath.threads(threads):
        m = SparseIsing(J, b, beta=0.4, n_chains=chains, seed=5, storage=storage, colouring=colouring)
        m.clamp([0, 3], [1, -1])
        return m.sample(3, warmup=2, thin=1, nodes="all", pairs="edges", keep_states=True), m


def check_ising(r, m, J, b):
    e, mag, m1, m2, (i, j) = ising_reference(r.states, J, b)
    # pairs="edges" lists the edges in the order of graph.edges()
    gi, gj, _ = m.graph.edges()
    order = {(a, c): k for k, (a, c) in enumerate(zip(i.tolist(), j.tolist()))}
    m2 = m2[[order[(min(a, c), max(a, c))] for a, c in zip(gi.tolist(), gj.tolist())]]
    denom = r.states.shape[0] * r.states.shape[1]
    np.testing.assert_allclose(r.energy, e, rtol=0, atol=energy_scale(J, b))
    np.testing.assert_array_equal(r.magnetization, mag)
    np.testing.assert_array_equal(r.node_mean, m1 / denom)
    np.testing.assert_array_equal(r.pair_mean, m2 / denom)


@pytest.mark.parametrize("chains", [1, 31, 32, 33, 300, 1000])
def test_ising_observers_every_level(chains):
    J = random_couplings(40, 0.15, seed=chains)
    b = np.random.default_rng(chains).normal(0, 0.5, 40).astype(np.float32)
    b[5] = 0.0
    runs = []
    for level in LEVELS:
        r, m = sample_ising(J, b, chains, level, 1, storage="ell" if chains % 2 else "csr")
        check_ising(r, m, J, b)
        runs.append(r)
    for r in runs[1:]:
        np.testing.assert_array_equal(r.states, runs[0].states)
        np.testing.assert_array_equal(r.energy, runs[0].energy)
        np.testing.assert_array_equal(r.node_mean, runs[0].node_mean)
        np.testing.assert_array_equal(r.pair_mean, runs[0].pair_mean)


@pytest.mark.parametrize("chains", [77, 1000])
def test_ising_observers_large_graph_threads(chains):
    """Large enough for the threaded paths (chain blocks, moments)."""
    J, c = dtm_couplings(20, seed=3)
    b = np.linspace(-0.3, 0.3, J.shape[0]).astype(np.float32)
    ref = None
    for level in LEVELS:
        for threads in (1, 2):
            r, m = sample_ising(J, b, chains, level, threads, colouring=c)
            if ref is None:
                check_ising(r, m, J, b)
                ref = r
            np.testing.assert_array_equal(r.energy, ref.energy)
            np.testing.assert_array_equal(r.magnetization, ref.magnetization)
            np.testing.assert_array_equal(r.pair_mean, ref.pair_mean)


def potts_reference(S, J, b):
    R, C, n = S.shape
    eq = S[..., :, None] == S[..., None, :]
    e = -0.5 * np.einsum("rcij,ij->rc", eq, J) - b.astype(np.float64)[np.arange(n), S].sum(axis=-1)
    return e


@pytest.mark.parametrize("chains", [1, 31, 33, 64, 1000])
@pytest.mark.parametrize("K", [3, 40])
def test_potts_observers_every_level(chains, K):
    n = 30
    J = random_couplings(n, 0.2, seed=K + chains)
    b = np.random.default_rng(chains).normal(0, 0.5, (n, K)).astype(np.float32)
    pairs = np.array([[0, 1], [2, 9], [4, 4], [7, 3]])
    runs = []
    for level in LEVELS:
        with _backend.cpu_level_as(level), heatbath.threads(1 + (chains > 500)):
            m = SparsePotts(J, K, b, beta=0.5, n_chains=chains, seed=7)
            m.clamp([2, 11], [1, K - 1])
            # one record per call: with one chain, `state` may be a view of
            # the live states, so kept states of several records would alias
            recs = [m.sample(1, warmup=1, nodes="all", pairs=pairs, keep_states=True) for _ in range(2)]
        for r in recs:
            S = r.states
            np.testing.assert_allclose(r.energy, potts_reference(S, J, b), rtol=0, atol=energy_scale(J, b))
            counts = np.stack([(S == q).sum(axis=(0, 1)) for q in range(K)], axis=1)
            np.testing.assert_array_equal(r.node_mean, counts / chains)
            want = [(S[..., p] == S[..., q]).sum() for p, q in pairs]
            np.testing.assert_array_equal(r.pair_mean, np.array(want) / chains)
        runs.append(recs)
    for recs in runs[1:]:
        for r, r0 in zip(recs, runs[0]):
            np.testing.assert_array_equal(r.states, r0.states)
            np.testing.assert_array_equal(r.energy, r0.energy)


def test_energy_method_matches_sample():
    J = random_couplings(25, 0.3, seed=1)
    m = SparseIsing(J, beta=0.3, n_chains=70, seed=2).sweep(2)
    e, *_ = ising_reference(m.state[None], J, np.zeros(25))
    np.testing.assert_allclose(m.energy(), e[0], rtol=0, atol=energy_scale(J, np.zeros(25)))
