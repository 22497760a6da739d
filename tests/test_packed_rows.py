"""heatbath.ebm.packed_rows: packed row access and restarting a SparseIsing
reproduce what the state property and a freshly built model give."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath.dtm import torus_graph
from heatbath.ebm import SparseIsing
from heatbath.ebm.graphs import graph_from_edges
from heatbath.ebm.packed_rows import get_rows, random_rows, reseed, set_rows, unpack_rows


def _model(chains=70, seed=3, device="cpu"):
    tg = torus_graph(12, 64)  # the digits DTM's graph: 144 nodes, degree 12, parity colours
    w = np.random.default_rng(1).normal(0.0, 0.5, tg.n_edges)
    g = graph_from_edges(144, tg.edges_i, tg.edges_j, w)
    bias = np.linspace(-0.5, 0.5, 144)
    return SparseIsing(g, bias, beta=0.7, n_chains=chains, colouring=tg.colours, seed=seed, device=device)


def test_rows_match_state():
    m = _model()
    nodes = np.array([5, 0, 77, 143])
    s = m.state
    np.testing.assert_array_equal(unpack_rows(get_rows(m, nodes), m.n_chains), s[:, nodes])
    src = _model(seed=9)
    set_rows(m, nodes, get_rows(src, nodes))
    s2 = m.state
    np.testing.assert_array_equal(s2[:, nodes], src.state[:, nodes])
    rest = np.setdiff1d(np.arange(144), nodes)
    np.testing.assert_array_equal(s2[:, rest], s[:, rest])


def test_reseed_reproduces_a_fresh_model():
    """A model reused under reseed() sweeps bit-equal to a new one with that
    seed, the same state and the same clamped nodes."""
    used = _model(seed=1)
    used.sweep(7)
    clamp = np.arange(0, 144, 5)
    fresh = _model(seed=42)
    vals = np.where(np.arange(used.n_chains * clamp.size).reshape(used.n_chains, -1) % 3, 1, -1)
    for m in (used, fresh):
        m.clamp(clamp, vals)
    set_rows(used, np.arange(144), get_rows(fresh, np.arange(144)))
    reseed(used, 42)
    used.sweep(5)
    fresh.sweep(5)
    np.testing.assert_array_equal(used.state, fresh.state)
    np.testing.assert_array_equal(used.state[:, clamp], vals)


def test_random_rows_fair_and_deterministic():
    m = _model(chains=1000)
    nodes = np.arange(0, 144, 2)
    random_rows(m, nodes, seed=5, stream=2)
    a = m.state[:, nodes]
    random_rows(m, nodes, seed=5, stream=2)
    np.testing.assert_array_equal(m.state[:, nodes], a)
    # 72,000 fair spins: the mean lies within 5 standard errors of 0
    assert abs(a.mean()) < 5 / np.sqrt(a.size)
    random_rows(m, nodes, seed=5, stream=3)
    assert not np.array_equal(m.state[:, nodes], a)


def test_errors():
    m = _model()
    with pytest.raises(ValueError, match="'nodes'"):
        get_rows(m, [144])
    with pytest.raises(TypeError, match="'nodes'"):
        get_rows(m, [0.5])
    with pytest.raises(ValueError, match="'words'"):
        set_rows(m, [0, 1], np.zeros((3, 3), np.uint32))
    with pytest.raises(TypeError, match="'words'"):
        set_rows(m, [0, 1], np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="'model'"):
        reseed(object(), 1)
    with pytest.raises(ValueError, match="'sweeps_done'"):
        reseed(m, 1, -1)
    with pytest.raises(ValueError, match="'n_chains'"):
        unpack_rows(np.zeros((2, 1), np.uint32), 33)


@pytest.mark.gpu
def test_cuda_rows_and_reseed_match_cpu():
    import cupy as cp

    nodes = np.arange(0, 144, 3)
    cpu, gpu = _model(seed=4), _model(seed=4, device="cuda")
    for m in (cpu, gpu):
        m.sweep(3)
        random_rows(m, nodes, seed=8, stream=1)
        reseed(m, 11)
        m.sweep(4)
    rows = get_rows(gpu, nodes)
    assert isinstance(rows, cp.ndarray)
    np.testing.assert_array_equal(unpack_rows(rows, gpu.n_chains), unpack_rows(get_rows(cpu, nodes), 70))
    np.testing.assert_array_equal(gpu.state, cpu.state)
