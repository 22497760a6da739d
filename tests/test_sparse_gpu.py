"""The sparse-graph Gibbs samplers give the same states on the GPU as on the
CPU, to the bit: spins (field tables of groups of four neighbours, a warp per
32 state words) and Potts nodes (weights in registers for K <= 8, in memory
above), CSR and ELL, clamps, one beta or one per chain, chain offsets, chain
counts that leave partial words, partial warps and several warps per node,
nodes of degree 0, 1, 5, 12 and 70 (several passes of field tables), and
betas large enough for the clamps of exp_f32 and for ties of the byte
decision."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath.ebm import SparseIsing, SparsePotts
from heatbath.ebm.graphs import dtm_grid_edges

pytestmark = pytest.mark.gpu


def _mixed(chains, device, storage="csr", beta=1.0, chain_offset=0):
    # the 10x10 DTM grid (degree 12), a hub joined to 70 nodes, nodes of degree 5 and 1,
    # one node with no neighbour; two nodes clamped
    i, j, w, _ = dtm_grid_edges(side=10, seed=2)
    rng = np.random.default_rng(5)
    i = np.concatenate([i, np.full(70, 100), [101, 101, 101, 101, 101, 102]])
    j = np.concatenate([j, np.arange(70), [3, 17, 44, 80, 99, 55]])
    w = np.concatenate([w, rng.normal(0, 0.3, 76)])
    m = SparseIsing.from_edges(
        104,
        list(zip(i.tolist(), j.tolist())),
        w,
        bias=rng.normal(0, 0.2, 104),
        n_chains=chains,
        seed=9,
        storage=storage,
        beta=beta,
        device=device,
        chain_offset=chain_offset,
    )
    m.clamp([7, 60], [1, -1])
    return m


@pytest.mark.parametrize("chains", [1, 37, 300, 1000, 1024, 2049, 5000])
@pytest.mark.parametrize("storage", ["csr", "ell"])
@pytest.mark.parametrize("betas", ["one", "per-chain", "hot"])
def test_spins_bit_identical(chains, storage, betas):
    beta = {
        "one": 0.9,
        "per-chain": np.linspace(0.3, 1.4, chains),
        "hot": np.linspace(0.3, 1.4, chains) * 80.0,  # the exp clamps act
    }[betas]
    cpu = _mixed(chains, "cpu", storage, beta).sweep(6)
    gpu = _mixed(chains, "cuda", storage, beta).sweep(6)
    np.testing.assert_array_equal(gpu.state, cpu.state)
    assert np.unique(cpu.state).size == 2
    # one more sweep after a state written from the host
    s = np.where(np.random.default_rng(chains).random(cpu.state.shape) < 0.5, 1, -1).astype(np.int8)
    cpu.state, gpu.state = s, s
    np.testing.assert_array_equal(gpu.sweep(1).state, cpu.sweep(1).state)


def test_spins_chain_offset_and_dtm_graph():
    for off in (256, 1024 + 256):
        np.testing.assert_array_equal(
            _mixed(700, "cuda", chain_offset=off).sweep(3).state,
            _mixed(700, "cpu", chain_offset=off).sweep(3).state,
        )
    i, j, w, c = dtm_grid_edges(side=70, seed=0)
    kw = dict(n_chains=3000, colouring=c, seed=1)
    a = SparseIsing.from_edges(4900, list(zip(i.tolist(), j.tolist())), w, **kw).sweep(3).state
    b = SparseIsing.from_edges(4900, list(zip(i.tolist(), j.tolist())), w, device="cuda", **kw).sweep(3).state
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("K", [2, 3, 5, 8, 9, 17])
@pytest.mark.parametrize("chains", [1, 130, 1000])
def test_potts_bit_identical(K, chains):
    rng = np.random.default_rng(K)
    n = 24
    A = np.triu(rng.random((n, n)) < 0.3, 1) * rng.normal(0, 0.6, (n, n))
    A[np.arange(n - 1), np.arange(1, n)] = rng.normal(0, 0.6, n - 1)
    J = A.astype(np.float32).astype(np.float64)
    J = J + J.T
    b = rng.normal(0, 0.4, (n, K))
    for beta in (np.linspace(0.4, 1.6, chains), 1.3):
        runs = []
        for device in ("cpu", "cuda"):
            m = SparsePotts(J, K, b, beta=beta, n_chains=chains, seed=6, device=device)
            m.clamp([3], [K - 1])
            runs.append(m.sweep(5).state)
        np.testing.assert_array_equal(runs[1], runs[0])
        assert chains == 1 or np.unique(runs[0]).size > 1
