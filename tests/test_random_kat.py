"""Known-answer tests: Random123's published Philox4x32-10 vectors (raw
uint32 equality) and every derived stream against the numpy reference."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
import reference as ref
from heatbath import random as hr

# (counter words, key words) -> output words, from Random123's kat_vectors.
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _kat_arrays():
    c = np.array([k[0] for k in KAT], dtype=np.uint32)
    k = np.array([k[1] for k in KAT], dtype=np.uint32)
    o = np.array([k[2] for k in KAT], dtype=np.uint32)
    return c, k, o


def test_numpy_reference_matches_kat():
    c, k, o = _kat_arrays()
    np.testing.assert_array_equal(ref.philox4x32_10(c, k), o)


@pytest.mark.parametrize("level", heatbath.cpu_levels())
def test_cpu_matches_kat(level):
    c, k, o = _kat_arrays()
    with heatbath._backend.cpu_level_as(level):
        np.testing.assert_array_equal(hr.philox4x32_10(c, k), o)


def test_raw_matches_reference_on_random_counters():
    g = np.random.default_rng(0)
    c = g.integers(0, 2**32, size=(1000, 4), dtype=np.uint32)
    k = g.integers(0, 2**32, size=(1000, 2), dtype=np.uint32)
    np.testing.assert_array_equal(hr.philox4x32_10(c, k), ref.philox4x32_10(c, k))
    # key broadcast over leading dims
    np.testing.assert_array_equal(hr.philox4x32_10(c.reshape(10, 100, 4), k[0]),
                                  ref.philox4x32_10(c, np.broadcast_to(k[0], (1000, 2))).reshape(10, 100, 4))


SEEDS = [0, 1, 0xDEADBEEFCAFEF00D, 2**64 - 1]
OFFSETS = [0, 5, 127, 2**40 + 3, 2**63 - 1000]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", OFFSETS)
def test_uniform_streams_match_reference(seed, offset):
    n = 300
    np.testing.assert_array_equal(hr.uniform(n, seed, offset).astype(np.float64), ref.uniform_f32(seed, offset, n))
    np.testing.assert_array_equal(hr.uniform(n, seed, offset, dtype="float64"), ref.uniform_f64(seed, offset, n))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", OFFSETS)
def test_normal_streams_match_reference(seed, offset):
    n = 300
    z = hr.normal(n, seed, offset).astype(np.float64)
    zref, r = ref.normal_f32_f64ref(seed, offset, n)
    # float32 log, sqrt and quarter-turn sin/cos: a few float32 ulp of the
    # radius (eps32 = 1.19e-7).
    assert np.max(np.abs(z - zref) / np.maximum(r, 1.0)) < 8 * np.finfo(np.float32).eps
    z64 = hr.normal(n, seed, offset, dtype="float64")
    np.testing.assert_allclose(z64, ref.normal_f64(seed, offset, n), rtol=0, atol=1e-13)


def test_stream_argument_changes_counter_words_2_3():
    n = 200
    for stream in (1, 2**32 + 7):
        x = hr.uniform(n, 9, 11, stream=stream).astype(np.float64)
        np.testing.assert_array_equal(x, ref.uniform_f32(9, 11, n, stream=stream))
    assert not np.array_equal(hr.uniform(n, 9, stream=0), hr.uniform(n, 9, stream=1))


@pytest.mark.parametrize("offset", [0, 3, 1000])
def test_bernoulli_matches_reference(offset):
    g = np.random.default_rng(1)
    p = g.random(500)
    p[:5] = [0.0, 1.0, 0.5, 2**-32, 1 - 2**-32]
    np.testing.assert_array_equal(hr.bernoulli(p, 3, offset), ref.bernoulli(p, 3, offset))
    p32 = p.astype(np.float32)
    np.testing.assert_array_equal(hr.bernoulli(p32, 3, offset), ref.bernoulli(p32.astype(np.float64), 3, offset))


@pytest.mark.parametrize("low,high", [(0, 10), (-5, 3), (0, 2**40 + 1), (-(2**63), 2**63 - 1)])
def test_integers_match_reference(low, high):
    x = hr.integers(low, high, shape=200, seed=4, offset=17)
    np.testing.assert_array_equal(x, ref.integers(low, high, 4, 17, 200))
    assert x.min() >= low and x.max() < high


def test_generator_as_seed_is_reproducible():
    a = hr.uniform(10, np.random.default_rng(5))
    b = hr.uniform(10, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
