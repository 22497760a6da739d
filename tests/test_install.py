"""What an installation says about itself (``heatbath info``, ``has_cuda``)
against the module it runs, and the CUDA compatibility rules it applies."""

from __future__ import annotations

import ctypes
import importlib

import heatbath
import pytest
from heatbath import _install
from heatbath.cli import main


def _driver_missing() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return True
    return False


def test_build_record_matches_the_module():
    info = _install.build_info()
    assert info["known"], "heatbath._build_info is written by every CMake build"
    assert info["version"] in ("", heatbath.__version__)
    compiled = info["cpu_levels"]
    assert compiled[0] == "base"
    # the levels this CPU runs are compiled ones, in the same order, and the one in use is among them
    here = heatbath.cpu_levels()
    assert here == [lvl for lvl in compiled if lvl in here]
    assert heatbath.cpu_level() in here
    if heatbath.cuda_built():
        assert info["cuda_version"] and info["cuda_architectures"]
    else:
        assert info["cuda_architectures"] == []


def test_info_prints_the_build(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"heatbath {heatbath.__version__} ")
    compiled = _install.build_info()["cpu_levels"]
    assert f"CPU levels compiled: {', '.join(compiled)};" in out
    assert f"in use: {heatbath.cpu_level()}" in out
    if heatbath.cuda_built():
        text = _install.architectures_text(_install.build_info()["cuda_architectures"])
        assert f"CUDA module: CUDA {_install.build_info()['cuda_version']}, {text}" in out
    else:
        assert "CUDA module: not built" in out
    reason = heatbath.cuda_unavailable_reason()
    assert ("CUDA arrays: usable" if reason is None else f"CUDA arrays: not usable: {reason}") in out


@pytest.mark.skipif(not _driver_missing(), reason="an NVIDIA driver is installed here")
def test_no_driver_imports_and_says_why():
    # The CUDA module links the CUDA runtime statically, which loads the driver only when used.
    if heatbath.cuda_built():
        importlib.import_module("heatbath._cuda")
    assert heatbath.has_cuda() is False
    reason = heatbath.cuda_unavailable_reason()
    assert reason == (
        "no NVIDIA driver (libcuda.so.1 not found)"
        if heatbath.cuda_built()
        else "heatbath._cuda was not built (no nvcc when this heatbath was built)"
    )


@pytest.mark.parametrize(
    "archs, cc, runs",
    [
        # machine code runs on GPUs of the same major version and a minor version not below it
        (["80-real", "90-real"], 80, "sm_80 code"),
        (["80-real", "90-real"], 86, "sm_80 code"),
        (["80-real", "90-real"], 89, "sm_80 code"),
        (["75-real", "80-real", "86-real"], 87, "sm_86 code"),
        (["100-real"], 103, "sm_100 code"),
        (["80-real", "90-real"], 75, None),
        (["80-real", "90-real"], 100, None),
        (["90-real"], 120, None),
        (["86-real"], 80, None),
        # PTX is compiled by the driver for any later GPU, never an earlier one
        (["80-real", "90-real", "90-virtual"], 100, "PTX compute_90, compiled by the driver"),
        (["100-real", "120-real", "120-virtual"], 121, "sm_120 code"),
        (["100-real", "120-real", "120-virtual"], 130, "PTX compute_120, compiled by the driver"),
        (["120-virtual"], 110, None),
        (["80"], 86, "sm_80 code"),  # CMake's plain '80' is code and PTX
        (["80"], 90, "PTX compute_80, compiled by the driver"),
    ],
)
def test_runs_on(archs, cc, runs):
    assert _install.runs_on(archs, cc) == runs


def test_architectures_text_and_driver():
    archs = ["75-real", "80-real", "90-real", "100-real", "120-real", "120-virtual"]
    assert _install.architectures_text(archs) == "sm_75, sm_80, sm_90, sm_100, sm_120 + PTX compute_120"
    assert _install.driver_needed("13.0.88") == (13000, ">= 580.65.06")
    assert _install.driver_needed("12.8.93") == (12000, ">= 525.60.13")
    assert _install.driver_needed("") is None


def _pretend(monkeypatch, driver, cuda_version="13.0.88", archs=("80-real", "90-real", "90-virtual")):
    monkeypatch.setattr(_install, "cuda_built", lambda: True)
    monkeypatch.setattr(
        _install,
        "build_info",
        lambda: {"known": True, "cuda_version": cuda_version, "cuda_architectures": list(archs)},
    )
    monkeypatch.setattr(_install, "driver", lambda: driver)


def test_reasons(monkeypatch):
    gpu = _install.Gpu(0, "GPU A", 90)
    _pretend(monkeypatch, _install.Driver(found=True, version=12080, gpus=[gpu]))
    assert _install.cuda_unavailable_reason() == (
        "the NVIDIA driver supports CUDA 12.8; this heatbath was built with CUDA 13.0.88 "
        "and needs a driver >= 580.65.06"
    )
    _pretend(monkeypatch, _install.Driver(found=True, version=13000, gpus=[]))
    assert _install.cuda_unavailable_reason() == "no CUDA GPU is visible"
    old = _install.Gpu(0, "GPU B", 70)
    _pretend(monkeypatch, _install.Driver(found=True, version=13000, gpus=[old]))
    assert _install.cuda_unavailable_reason() == (
        "no GPU here runs the architectures compiled in (sm_80, sm_90 + PTX compute_90): GPU B (sm_70)"
    )
    _pretend(
        monkeypatch,
        _install.Driver(found=True, version=13000, error="the NVIDIA driver did not start: x (1)"),
    )
    assert _install.cuda_unavailable_reason() == "the NVIDIA driver did not start: x (1)"
