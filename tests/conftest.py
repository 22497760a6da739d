from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _gpu_reason():
    import heatbath

    if not heatbath.cuda_built():
        return "heatbath._cuda was not built (no nvcc at install time)"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "cupy is not installed"
    if not heatbath.has_cuda():
        return "no CUDA GPU is visible"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"GPU test: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
