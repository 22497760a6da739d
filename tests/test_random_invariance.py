"""The same (seed, offset) gives the same values for any thread count, any
chunking of the draw and every CPU instruction-set level."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import random as hr

N = 200_003  # above the parallel threshold, not a multiple of any tile


def _draw(kind, n, seed, offset, dtype):
    if kind == "uniform":
        return hr.uniform(n, seed, offset, dtype=dtype)
    if kind == "normal":
        return hr.normal(n, seed, offset, dtype=dtype)
    if kind == "bernoulli":
        p = np.linspace(0, 1, n, dtype=dtype)
        return hr.bernoulli(p, seed, offset)
    return hr.integers(-1000, 2**40, shape=n, seed=seed, offset=offset)


KINDS = [("uniform", "float32"), ("uniform", "float64"), ("normal", "float32"), ("normal", "float64"),
         ("bernoulli", "float32"), ("integers", "int64")]


@pytest.mark.parametrize("kind,dtype", KINDS)
def test_thread_count_does_not_change_values(kind, dtype):
    with heatbath.threads(1):
        a = _draw(kind, N, 123, 7, dtype)
    for t in (2, 3, 5):
        with heatbath.threads(t):
            np.testing.assert_array_equal(_draw(kind, N, 123, 7, dtype), a)


@pytest.mark.parametrize("kind,dtype", KINDS)
def test_chunks_equal_one_draw(kind, dtype):
    g = np.random.default_rng(0)
    offset = 12345
    whole = _draw(kind, N, 99, offset, dtype)
    cuts = np.sort(g.choice(np.arange(1, N), size=6, replace=False))
    cuts = np.concatenate([[0], cuts, [N]])
    if kind == "bernoulli":  # p varies by element: draw each chunk with its own p
        p = np.linspace(0, 1, N, dtype=dtype)
        parts = [hr.bernoulli(p[a:b], 99, offset + a) for a, b in zip(cuts[:-1], cuts[1:])]
    else:
        parts = [_draw(kind, b - a, 99, offset + a, dtype) for a, b in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("kind,dtype", KINDS)
def test_every_cpu_level_gives_identical_bits(kind, dtype):
    levels = heatbath.cpu_levels()
    with heatbath._backend.cpu_level_as(levels[0]):
        ref = _draw(kind, 5000, 31, 3, dtype)
    for level in levels[1:]:
        with heatbath._backend.cpu_level_as(level):
            np.testing.assert_array_equal(_draw(kind, 5000, 31, 3, dtype), ref)


def test_out_fills_in_place_and_matches_allocation():
    out = np.empty((3, 1000), dtype=np.float32)
    r = hr.normal(None, 5, 10, out=out)
    assert r is out
    np.testing.assert_array_equal(out.ravel(), hr.normal(3000, 5, 10))
    np.testing.assert_array_equal(hr.uniform((3, 1000), 5), hr.uniform(3000, 5).reshape(3, 1000))


def test_different_seeds_and_offsets_differ():
    a = hr.uniform(1000, 1)
    assert not np.array_equal(a, hr.uniform(1000, 2))
    assert not np.array_equal(a, hr.uniform(1000, 1, 1))
    np.testing.assert_array_equal(a[1:], hr.uniform(999, 1, 1))


def test_empty_and_scalar_shapes():
    assert hr.uniform(0, 1).shape == (0,)
    assert hr.normal((), 1).shape == ()
    assert hr.uniform((2, 0, 3), 1).shape == (2, 0, 3)
