"""pytest-benchmark suite: ``python -m pytest bench/test_bench_random.py``.

Compare groups side by side in the report (heatbath vs numpy Generator)."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import random as hr

N = 10_000_000


@pytest.fixture(scope="module")
def out():
    o = np.empty(N, dtype=np.float32)
    o.fill(0)
    return o


@pytest.mark.parametrize("threads", [1, 2])
def test_heatbath_uniform(benchmark, out, threads):
    benchmark.group = "uniform float32 1e7"
    with heatbath.threads(threads):
        benchmark(hr.uniform, None, 7, out=out)


@pytest.mark.parametrize("threads", [1, 2])
def test_heatbath_normal(benchmark, out, threads):
    benchmark.group = "normal float32 1e7"
    with heatbath.threads(threads):
        benchmark(hr.normal, None, 7, out=out)


@pytest.mark.parametrize("bitgen", ["PCG64", "Philox"])
def test_numpy_uniform(benchmark, out, bitgen):
    benchmark.group = "uniform float32 1e7"
    g = np.random.Generator(getattr(np.random, bitgen)(1))
    benchmark(g.random, dtype=np.float32, out=out)


@pytest.mark.parametrize("bitgen", ["PCG64", "Philox"])
def test_numpy_normal(benchmark, out, bitgen):
    benchmark.group = "normal float32 1e7"
    g = np.random.Generator(getattr(np.random, bitgen)(1))
    benchmark(g.standard_normal, dtype=np.float32, out=out)
