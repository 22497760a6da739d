"""The float32 exp of the sparse spin update (d = exp(x) + 1): every CPU level
and code path gives the same bits, within 1.1 ulp of exp (float64 oracle),
and the clamps make any input finite."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import _backend
from heatbath._backend import _core


def _inputs():
    rng = np.random.default_rng(0)
    special = [-1e30, 1e30, np.inf, -np.inf, np.nan, 0.0, -0.0, -87.3, 88.37, -100.0, 100.0, 88.4, -87.4]
    # every float in a few narrow windows, plus wide and narrow uniform draws
    dense = np.concatenate(
        [np.arange(-1000, 1000) * np.float32(1e-6), 87.0 + np.arange(2000) * np.float32(1e-4)]
    )
    return np.concatenate(
        [rng.uniform(-87.3, 88.37, 300_000), rng.uniform(-3, 3, 300_000), dense, special]
    ).astype(np.float32)


def test_denominators_are_accurate():
    x = _inputs()
    with _backend.cpu_level_as("base"):
        d = _core.sparse_denominators(x, 0).astype(np.float64)
    assert np.all(np.isfinite(d)) and np.all(d >= 1.0)
    inner = np.isfinite(x) & (x >= -87.3) & (x <= np.float32(88.37))
    want = np.exp(x[inner].astype(np.float64)) + 1.0
    rel = np.abs(d[inner] - want) / want
    # exp within 1.1 ulp (2^-23 relative per ulp at worst), then the rounding of + 1
    assert rel.max() <= 1.6 * 2.0**-23, rel.max()
    # the clamps: beyond them the value at the clamp
    with _backend.cpu_level_as("base"):
        hi, lo = _core.sparse_denominators(np.array([88.37, -87.3], np.float32), 0)
    assert np.all(d[np.isnan(x) | (x > np.float32(88.37))] == hi)
    assert np.all(d[x < np.float32(-87.3)] == lo)


@pytest.mark.parametrize("level", heatbath.cpu_levels())
def test_denominators_equal_on_every_level_and_path(level):
    x = _inputs()
    with _backend.cpu_level_as("base"):
        ref = _core.sparse_denominators(x, 0)
    inner = np.abs(x) <= np.float32(87.3)
    with _backend.cpu_level_as(level):
        for path in (0, 1):
            np.testing.assert_array_equal(_core.sparse_denominators(x, path), ref)
        np.testing.assert_array_equal(_core.sparse_denominators(x[inner], 2), ref[inner])
    with pytest.raises(ValueError, match="path"):
        _core.sparse_denominators(x, 3)
