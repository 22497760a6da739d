"""Arrays that went through pickle (as on a Dask worker) carry their own
dtype objects, equal to but not the same objects as numpy's: every binding
must accept them (dtype equivalence, not identity) and give the results of
the original arrays."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from heatbath import _core
from heatbath.ebm import SparseIsing, SparsePotts
from heatbath.ebm.graphs import dtm_grid_edges


def rt(a):
    """A pickle round trip of ``a``."""
    return pickle.loads(pickle.dumps(a))


def test_round_trip_gives_new_dtype_objects():
    a = rt(np.zeros(3, dtype=np.int64))
    assert a.dtype == np.dtype(np.int64)
    if a.dtype is np.dtype(np.int64):
        pytest.skip("this numpy keeps dtype identity through pickle")


def _sparse_args(model):
    k = model._k
    return [k["row"], k["col"], k["w"], k["bias"], model._beta_dev, k["order"], k["block_ptr"]]


@pytest.mark.parametrize("potts", [False, True])
def test_sparse_sweeps_and_observe(potts):
    i, j, w, c = dtm_grid_edges(side=10, seed=1)
    edges = list(zip(i.tolist(), j.tolist()))
    if potts:
        m = SparsePotts.from_edges(100, edges, w, 3, n_chains=40, colouring=c, seed=2)
    else:
        m = SparseIsing.from_edges(100, edges, w, n_chains=40, colouring=c, seed=2)
    results = []
    for wrap in (lambda a: a, rt):
        s = m._s.reshape(-1).copy()
        row, col, wt, bias, beta, order, bp = (wrap(a) for a in _sparse_args(m))
        s = wrap(s)
        head = (s, 40, 3) if potts else (s, 40)
        sweeps = _core.sparse_potts_sweeps if potts else _core.sparse_ising_sweeps
        sweeps(*head, row, col, wt, bias, beta, order, bp, 7, 0, 3, 0)
        energy = wrap(np.zeros(40))
        nodes = wrap(np.arange(5, dtype=np.int32))
        pairs = wrap(np.array([0, 1, 2, 3], dtype=np.int32))
        m1 = wrap(np.zeros(5 * 3 if potts else 5))
        m2 = wrap(np.zeros(2))
        if potts:
            _core.sparse_potts_observe(*head, row, col, wt, bias, energy, nodes, m1, pairs, m2)
        else:
            mag = wrap(np.zeros(40))
            _core.sparse_ising_observe(*head, row, col, wt, bias, energy, mag, nodes, m1, pairs, m2)
        results.append((s, energy, m1, m2))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_fills(dtype):
    for fill in (_core.fill_uniform, _core.fill_normal):
        a, b = np.empty(100, dtype=dtype), rt(np.empty(100, dtype=dtype))
        fill(a, 3, 1, 0)
        fill(b, 3, 1, 0)
        np.testing.assert_array_equal(a, b)
    p = np.linspace(0, 1, 50).astype(dtype)
    a, b = np.empty(50, dtype=np.uint8), rt(np.empty(50, dtype=np.uint8))
    _core.fill_bernoulli(p, a, 3, 1, 0)
    _core.fill_bernoulli(rt(p), b, 3, 1, 0)
    np.testing.assert_array_equal(a, b)
    a, b = np.empty(30, dtype=np.int64), rt(np.empty(30, dtype=np.int64))
    _core.fill_integers(a, -5, 10, 3, 1, 0)
    _core.fill_integers(b, -5, 10, 3, 1, 0)
    np.testing.assert_array_equal(a, b)
    c = np.arange(8, dtype=np.uint32).reshape(2, 4)
    k = np.array([[1, 2]] * 2, dtype=np.uint32)
    a, b = np.empty((2, 4), dtype=np.uint32), rt(np.empty((2, 4), dtype=np.uint32))
    _core.philox4x32_10(c, k, a)
    _core.philox4x32_10(rt(c), rt(k), b)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_diffusion_step(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype(dtype)
    eps = rng.normal(size=(4, 6)).astype(dtype)
    coef = np.zeros((1, 13))
    coef[0, :4] = [0.9, 0.1, 0.0, 0.0]
    coef[0, 8] = 1.0
    outs = []
    for wrap in (lambda a: a, rt):
        out = wrap(np.zeros((4, 6), dtype=dtype))
        _core.diffusion_step(wrap(x), wrap(coef), out, model_output=wrap(eps), draw=True, seed=1)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rbm_kernels(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 7)).astype(dtype)
    bias = rng.normal(size=7).astype(dtype)
    scale = np.full(5, 0.5, dtype=dtype)
    res = []
    for wrap in (lambda a: a, rt):
        sample, prob = wrap(np.zeros((5, 7), dtype=dtype)), wrap(np.zeros((5, 7), dtype=dtype))
        _core.rbm_bernoulli(wrap(x), wrap(bias), sample, prob, wrap(scale), wrap(bias), 2, 0, 0)
        g = wrap(np.zeros((5, 7), dtype=dtype))
        _core.rbm_gaussian(wrap(x), wrap(bias), 1.0, g, None, 1.0, 2, 0, 0)
        res.append((sample, prob, g))
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)
