"""Bad input raises TypeError/ValueError naming the argument; nothing crashes."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import _core
from heatbath import random as hr


@pytest.mark.parametrize(
    "call,exc,name",
    [
        (lambda: hr.uniform(-1, 0), ValueError, "shape"),
        (lambda: hr.uniform((2, -3), 0), ValueError, "shape"),
        (lambda: hr.uniform("a", 0), TypeError, "shape"),
        (lambda: hr.uniform(3, -1), ValueError, "seed"),
        (lambda: hr.uniform(3, 2**64), ValueError, "seed"),
        (lambda: hr.uniform(3, 1.5), TypeError, "seed"),
        (lambda: hr.uniform(3, 1, offset=-2), ValueError, "offset"),
        (lambda: hr.uniform(3, 1, offset=2**64 - 1), ValueError, "offset"),
        (lambda: hr.uniform(3, 1, dtype="int32"), TypeError, "dtype"),
        (lambda: hr.normal(3, 1, dtype="float16"), TypeError, "dtype"),
        (lambda: hr.uniform(None, 1), TypeError, "shape"),
        (lambda: hr.uniform(None, 1, out=np.empty(4, np.int32)), TypeError, "out"),
        (lambda: hr.uniform(None, 1, out=np.empty((4, 4), np.float32)[:, ::2]), ValueError, "out"),
        (lambda: hr.normal((3,), 1, out=np.empty(4, np.float32)), ValueError, "out"),
        (lambda: hr.normal(None, 1, out=[0.0, 1.0]), TypeError, "out"),
        (lambda: hr.uniform(3, 1, device="tpu"), ValueError, "device"),
        (lambda: hr.uniform(3, 1, stream=-1), ValueError, "stream"),
        (lambda: hr.bernoulli([0.5, 1.5], 1), ValueError, "p"),
        (lambda: hr.bernoulli([0.5, np.nan], 1), ValueError, "p"),
        (lambda: hr.bernoulli(["a"], 1), TypeError, "p"),
        (lambda: hr.bernoulli([0.5, 0.5], 1, out=np.empty(3, bool)), ValueError, "out"),
        (lambda: hr.bernoulli([0.5, 0.5], 1, out=np.empty(2, np.float32)), TypeError, "out"),
        (lambda: hr.integers(5, 5, shape=3, seed=1), ValueError, "high"),
        (lambda: hr.integers(0, 2**64, shape=3, seed=1), ValueError, "low"),
        (lambda: hr.integers(0.5, 3, shape=3, seed=1), TypeError, "low"),
        (lambda: hr.philox4x32_10(np.zeros((2, 4), np.int64), np.zeros(2, np.uint32)), TypeError, "counter"),
        (lambda: hr.philox4x32_10(np.zeros((2, 3), np.uint32), np.zeros(2, np.uint32)), ValueError, "counter"),
        (lambda: hr.philox4x32_10(np.zeros((2, 4), np.uint32), np.zeros((3, 2), np.uint32)), ValueError, "key"),
        (lambda: heatbath.set_num_threads(0), ValueError, "n"),
        (lambda: heatbath.set_num_threads("2"), TypeError, "n"),
    ],
)
def test_bad_input_names_argument(call, exc, name):
    with pytest.raises(exc, match=f"'{name}'"):
        call()


def test_read_only_out():
    out = np.empty(4, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="'out'"):
        hr.uniform(None, 1, out=out)


def test_bindings_check_on_their_own():
    # The private bindings validate too: no crash when called directly.
    with pytest.raises(TypeError, match="'out'"):
        _core.fill_uniform(np.empty(4, np.int16), 1, 0, 0)
    with pytest.raises(ValueError, match="'out'"):
        _core.fill_normal(np.empty((4, 4), np.float32)[:, ::2], 1, 0, 0)
    with pytest.raises(ValueError, match="'p'"):
        _core.fill_bernoulli(np.ones(3), np.empty(4, np.uint8), 1, 0, 0)
    with pytest.raises(ValueError, match="'key'"):
        _core.philox4x32_10(np.zeros(8, np.uint32), np.zeros(3, np.uint32), np.zeros(8, np.uint32))
    with pytest.raises(ValueError, match="'level'"):
        _core.set_cpu_level("sse9")


def test_cupy_array_without_cuda_module_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if fromlist and "_cuda" in fromlist:
            raise ImportError("no _cuda")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RuntimeError, match="without its CUDA module"):
        heatbath._backend.cuda_module()
