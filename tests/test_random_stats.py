"""Statistical tests with fixed seeds. Tolerances come from the sample size:
means within 5 standard errors, Kolmogorov-Smirnov distance below the
alpha = 1e-6 critical value sqrt(ln(2 / alpha) / (2 n))."""

from __future__ import annotations

import math

import numpy as np
import pytest

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

from heatbath import random as hr

N = 2_000_000
Z = 5.0  # standard errors


def ks_critical(n, alpha=1e-6):
    return math.sqrt(math.log(2 / alpha) / (2 * n))


def _moments_ok(x, mean, var, m4):
    """Sample mean and variance against their exact values, with standard
    errors sqrt(var/n) and sqrt((m4 - var^2)/n)."""
    n = x.size
    x = x.astype(np.float64)
    assert abs(x.mean() - mean) < Z * math.sqrt(var / n)
    assert abs(x.var() - var) < Z * math.sqrt((m4 - var**2) / n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_moments_ks_and_bounds(dtype):
    x = hr.uniform(N, 20151, dtype=dtype)
    assert x.dtype == np.dtype(dtype)
    assert x.min() > 0 and x.max() < 1
    _moments_ok(x, 0.5, 1 / 12, 1 / 80)
    d = stats.kstest(x.astype(np.float64), "uniform").statistic
    assert d < ks_critical(N)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_moments_ks_and_tails(dtype):
    x = hr.normal(N, 77, dtype=dtype).astype(np.float64)
    _moments_ok(x, 0.0, 1.0, 3.0)
    d = stats.kstest(x, "norm").statistic
    assert d < ks_critical(N)
    # skewness and excess kurtosis: standard errors sqrt(6/n), sqrt(24/n)
    assert abs(stats.skew(x)) < Z * math.sqrt(6 / N)
    assert abs(stats.kurtosis(x)) < Z * math.sqrt(24 / N)
    # tail mass beyond 3 and 4 sigma against the binomial error
    for c in (3.0, 4.0):
        p = special.erfc(c / math.sqrt(2))
        k = np.count_nonzero(np.abs(x) > c)
        assert abs(k - N * p) < Z * math.sqrt(N * p * (1 - p)) + 1


def test_normal_pairs_are_uncorrelated():
    # cos and sin outputs of the same Box-Muller pair are uncorrelated.
    x = hr.normal(N, 5).astype(np.float64)
    a, b = x[0::2], x[1::2]
    assert abs(np.corrcoef(a, b)[0, 1]) < Z / math.sqrt(a.size)
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < Z / math.sqrt(N)


@pytest.mark.parametrize("p", [0.0, 1e-3, 0.3, 0.5, 0.97, 1.0])
def test_bernoulli_frequency(p):
    bits = hr.bernoulli(p, 8, shape=N)
    assert bits.dtype == np.bool_
    k = int(bits.sum())
    assert abs(k - N * p) <= Z * math.sqrt(N * p * (1 - p))
    if p in (0.0, 1.0):
        assert k == N * p


def test_integers_chi_square():
    m = 37
    x = hr.integers(m, shape=N, seed=2)
    counts = np.bincount(x, minlength=m)
    assert counts.size == m
    chi2 = ((counts - N / m) ** 2 / (N / m)).sum()
    assert stats.chi2.sf(chi2, m - 1) > 1e-6


def test_streams_are_independent():
    a = hr.normal(N, 1, stream=0).astype(np.float64)
    b = hr.normal(N, 1, stream=1).astype(np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < Z / math.sqrt(N)
