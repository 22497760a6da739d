"""CPU and GPU streams agree to the bit: integers, uniforms, Bernoulli bits
and normals (float32 and float64 Box-Muller are written with IEEE-exact
operations only, no libm, and contraction is off on both sides)."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from heatbath import random as hr

pytestmark = pytest.mark.gpu

N = 1_000_003
OFFSETS = [0, 5, 2**40 + 3]


def _ulp_diff(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    ints = np.int32 if a.dtype == np.float32 else np.int64
    ia, ib = a.view(ints).astype(np.int64), b.view(ints).astype(np.int64)
    # map to a monotone integer line
    ia = np.where(ia < 0, np.iinfo(ints).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(ints).min - ib, ib)
    return np.abs(ia - ib)


def test_raw_kat_on_gpu():
    import cupy as cp

    c = cp.asarray(np.array([[0, 0, 0, 0], [0xFFFFFFFF] * 4], dtype=np.uint32))
    k = cp.asarray(np.array([[0, 0], [0xFFFFFFFF] * 2], dtype=np.uint32))
    out = hr.philox4x32_10(c, k).get()
    np.testing.assert_array_equal(out, ref.philox4x32_10(c.get(), k.get()))


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_bit_equal(offset, dtype):
    g = hr.uniform(N, 17, offset, dtype=dtype, device="cuda").get()
    np.testing.assert_array_equal(g, hr.uniform(N, 17, offset, dtype=dtype))


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_bit_equal(offset, dtype):
    g = hr.normal(N, 17, offset, dtype=dtype, device="cuda").get()
    c = hr.normal(N, 17, offset, dtype=dtype)
    np.testing.assert_array_equal(g, c)
    assert _ulp_diff(g, c).max() == 0  # also the sign of zero


@pytest.mark.parametrize("offset", OFFSETS)
def test_integers_and_bernoulli_bit_equal(offset):
    import cupy as cp

    g = hr.integers(-7, 2**50, shape=N, seed=3, offset=offset, device="cuda").get()
    np.testing.assert_array_equal(g, hr.integers(-7, 2**50, shape=N, seed=3, offset=offset))
    p = np.random.default_rng(0).random(N)
    np.testing.assert_array_equal(hr.bernoulli(cp.asarray(p), 3, offset).get(), hr.bernoulli(p, 3, offset))
    with pytest.raises(ValueError, match="'p'"):
        hr.bernoulli(cp.asarray([0.5, 2.0]), 3)


def test_gpu_chunks_equal_one_draw():
    whole = hr.normal(N, 9, 100, device="cuda").get()
    a = hr.normal(1000, 9, 100, device="cuda").get()
    b = hr.normal(N - 1000, 9, 1100, device="cuda").get()
    np.testing.assert_array_equal(np.concatenate([a, b]), whole)


def test_gpu_respects_current_stream():
    import cupy as cp

    s = cp.cuda.Stream(non_blocking=True)
    with s:
        x = hr.uniform(N, 4, device="cuda")
    s.synchronize()
    np.testing.assert_array_equal(x.get(), hr.uniform(N, 4))
