"""The fused RBM kernels against independent oracles: the Bernoulli draw is
heatbath.random.bernoulli of the kernel's probabilities (bit for bit), the
probabilities are numpy's sigmoid, Gaussian draws are bias + sigma (s x + z)
with z from heatbath.random.normal; every CPU level and thread count agrees
to the bit; bad arguments raise errors that name them."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import _core
from heatbath import random as hr
from heatbath.ebm.rbm import bernoulli_units, gaussian_units


def _sigmoid64(u):
    return 1.0 / (1.0 + np.exp(-u))


def _case(dtype, rows=37, cols=53, ld_pad=5, seed=0):
    rng = np.random.default_rng(seed)
    big = (rng.normal(size=(rows, cols + ld_pad)) * 4).astype(dtype)
    x = big[:, :cols]  # strided rows
    bias = rng.normal(size=cols).astype(dtype)
    base = rng.normal(size=cols).astype(dtype)
    scale = rng.uniform(0, 1, size=rows).astype(dtype)
    return x, bias, base, scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0, 77, 2**40 + 5])
def test_bernoulli_matches_random_bernoulli_and_sigmoid(dtype, offset):
    x, bias, base, scale = _case(dtype)
    rows, cols = x.shape
    for lvl in heatbath.cpu_levels():
        with heatbath._backend.cpu_level_as(lvl):
            s = np.empty((rows, cols + 3), dtype=dtype)[:, :cols]
            p = np.empty((rows, cols), dtype=dtype)
            bernoulli_units(x, bias, s, p, seed=11, stream=5, offset=offset, scale=scale, base=base)
            u = (
                scale[:, None].astype(np.float64) * (x.astype(np.float64) + bias)
                + (1 - scale[:, None]) * base
            )
            tol = 2e-7 if dtype == np.float32 else 1e-14
            np.testing.assert_allclose(p, _sigmoid64(u), rtol=tol * 4, atol=tol)
            ref = hr.bernoulli(np.ascontiguousarray(p), 11, offset, stream=5)
            np.testing.assert_array_equal(s, ref.astype(dtype))
            if lvl == heatbath.cpu_levels()[0]:
                first = (s.copy(), p.copy())
            else:
                np.testing.assert_array_equal(s, first[0])
                np.testing.assert_array_equal(p, first[1])


def test_bernoulli_in_place_scalar_scale_and_threads():
    x, bias, _, _ = _case(np.float32, rows=1100, cols=1001)  # > 2 x 2^19 elements: two OpenMP threads
    s1 = np.empty_like(x)
    with heatbath.threads(1):
        bernoulli_units(x, bias, s1, seed=3, stream=9)
    s2 = np.empty_like(x)
    p = x.copy()
    with heatbath.threads(2):
        bernoulli_units(p, bias, s2, p, seed=3, stream=9)  # probabilities written over x
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_allclose(p, _sigmoid64(x.astype(np.float64) + bias), atol=2e-7)


def test_bernoulli_extremes():
    x = np.array([[-200.0, -50.0, 0.0, 50.0, 200.0]], dtype=np.float32)
    p = np.empty_like(x)
    s = np.empty_like(x)
    bernoulli_units(x, np.zeros(5, np.float32), s, p, seed=1, stream=1)
    assert np.all((p >= 0) & (p <= 1))
    assert p[0, 2] == 0.5 and p[0, 4] == 1.0 and p[0, 0] < 1e-37
    assert s[0, 0] == 0 and s[0, 4] == 1


def test_bernoulli_rate():
    # 10^6 draws at p = sigmoid(0.3): the rate within 5 standard errors
    n = 1000
    x = np.full((n, n), 0.3, dtype=np.float32)
    s = np.empty_like(x)
    bernoulli_units(x, np.zeros(n, np.float32), s, seed=5, stream=2)
    p = _sigmoid64(0.3)
    assert abs(s.mean() - p) < 5 * np.sqrt(p * (1 - p) / s.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_matches_normal(dtype):
    x, bias, _, scale = _case(dtype, seed=1)
    rows, cols = x.shape
    sigma = np.abs(np.random.default_rng(2).normal(size=cols)).astype(dtype) + 0.1
    outs = []
    for lvl in heatbath.cpu_levels():
        with heatbath._backend.cpu_level_as(lvl):
            s = np.empty((rows, cols), dtype=dtype)
            m = np.empty((rows, cols), dtype=dtype)
            gaussian_units(x, bias, sigma, s, m, seed=4, stream=8, offset=3, scale=scale)
            outs.append((s, m))
    for s, m in outs[1:]:
        np.testing.assert_array_equal(s, outs[0][0])
        np.testing.assert_array_equal(m, outs[0][1])
    s, m = outs[0]
    z = hr.normal((rows, cols), 4, 3, dtype=dtype, stream=8).astype(np.float64)
    sx = scale[:, None].astype(np.float64) * x
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(m, bias + sigma * sx, rtol=tol, atol=tol)
    np.testing.assert_allclose(s, bias + sigma * (sx + z), rtol=tol, atol=tol)


def test_kernel_errors_name_the_argument():
    x = np.zeros((4, 3), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="'bias'"):
        _core.rbm_bernoulli(x, b.astype(np.float64), None, None, 1.0, None, 0, 0, 0)
    with pytest.raises(ValueError, match="'bias'"):
        _core.rbm_bernoulli(x, np.zeros(4, np.float32), None, None, 1.0, None, 0, 0, 0)
    with pytest.raises(ValueError, match="'sample'"):
        _core.rbm_bernoulli(x, b, np.zeros((4, 4), np.float32), None, 1.0, None, 0, 0, 0)
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="'prob'.*read-only"):
        _core.rbm_bernoulli(x, b, None, ro, 1.0, None, 0, 0, 0)
    with pytest.raises(ValueError, match="'x'.*contiguous"):
        _core.rbm_bernoulli(np.zeros((3, 4), np.float32).T, b, None, None, 1.0, None, 0, 0, 0)
    with pytest.raises(TypeError, match="'x'"):
        _core.rbm_bernoulli(x.astype(np.int32), b, None, None, 1.0, None, 0, 0, 0)
    with pytest.raises(ValueError, match="'scale'"):
        _core.rbm_bernoulli(x, b, None, None, np.ones(3, np.float32), None, 0, 0, 0)
    with pytest.raises(ValueError, match="'sigma'"):
        _core.rbm_gaussian(x, b, np.ones(4, np.float32), None, None, 1.0, 0, 0, 0)
    # empty batch: nothing to do, no error at the kernel level
    _core.rbm_bernoulli(np.zeros((0, 3), np.float32), b, None, None, 1.0, None, 0, 0, 0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernels_match_cpu(dtype):
    import cupy as cp

    x, bias, base, scale = _case(dtype, rows=300, cols=129)
    s = np.empty(x.shape, dtype)
    p = np.empty(x.shape, dtype)
    bernoulli_units(x, bias, s, p, seed=7, stream=3, offset=5, scale=scale, base=base)
    gx = cp.asarray(np.ascontiguousarray(x))
    gs, gp = cp.empty(x.shape, dtype), cp.empty(x.shape, dtype)
    bernoulli_units(
        gx,
        cp.asarray(bias),
        gs,
        gp,
        seed=7,
        stream=3,
        offset=5,
        scale=cp.asarray(scale),
        base=cp.asarray(base),
    )
    if dtype == np.float32:
        np.testing.assert_array_equal(gp.get(), p)
        np.testing.assert_array_equal(gs.get(), s)
    else:
        np.testing.assert_allclose(gp.get(), p, rtol=1e-14)
        assert (gs.get() != s).mean() < 1e-3
    sigma = np.full(x.shape[1], 0.5, dtype)
    gaussian_units(x, bias, sigma, s, p, seed=7, stream=4, scale=0.7)
    gaussian_units(gx, cp.asarray(bias), cp.asarray(sigma), gs, gp, seed=7, stream=4, scale=0.7)
    tol = 0 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gs.get(), s, rtol=tol, atol=tol)
    np.testing.assert_allclose(gp.get(), p, rtol=tol, atol=tol)
