"""What this installation was built with, and whether this machine can run it.

The build side comes from ``heatbath._build_info`` (written by CMake): the CPU
instruction-set levels and CUDA architectures compiled in, the CUDA version.
The machine side is read from the NVIDIA driver itself (``libcuda.so.1``
through ctypes), so it is known without cupy: whether a driver is there, the
CUDA version it supports, and each GPU's compute capability.
"""

from __future__ import annotations

import ctypes
import functools
import re
from dataclasses import dataclass, field
from typing import Optional


def build_info() -> dict:
    """The build's record: version, cpu_levels, cuda_version, cuda_architectures, ..."""
    try:
        from . import _build_info as b  # type: ignore[attr-defined]
    except ImportError:  # built without CMake's record (never in a wheel)
        return {"cpu_levels": None, "cuda_version": "", "cuda_architectures": [], "known": False}
    info = {k: v for k, v in vars(b).items() if not k.startswith("_")}
    info["known"] = True
    return info


def _arch(name: str) -> tuple[int, str]:
    """CMake's architecture name ('90-real', '120-virtual', '80') -> (90, 'real'|'virtual'|'both')."""
    m = re.fullmatch(r"(\d+)[a-z]?(?:-(real|virtual))?", name)
    if not m:
        return (0, "real")
    return (int(m.group(1)), m.group(2) or "both")


def architectures_text(archs: list[str]) -> str:
    """'sm_75, sm_80, ... + PTX compute_120' for CMake's names."""
    real = [a for a, kind in map(_arch, archs) if kind in ("real", "both")]
    ptx = [a for a, kind in map(_arch, archs) if kind in ("virtual", "both")]
    text = ", ".join(f"sm_{a}" for a in real)
    if ptx:
        text += (" + " if text else "") + "PTX " + ", ".join(f"compute_{a}" for a in ptx)
    return text


def runs_on(archs: list[str], cc: int) -> Optional[str]:
    """How code compiled for ``archs`` runs on a GPU of compute capability
    ``cc`` (86 for 8.6): machine code of the same major version and a minor
    version not above the GPU's, else PTX of an architecture not above it,
    compiled by the driver when first loaded; None when neither exists."""
    real = sorted(a for a, kind in map(_arch, archs) if kind in ("real", "both"))
    ptx = sorted(a for a, kind in map(_arch, archs) if kind in ("virtual", "both"))
    sass = [a for a in real if a // 10 == cc // 10 and a <= cc]
    if sass:
        return f"sm_{sass[-1]} code"
    jit = [a for a in ptx if a <= cc]
    if jit:
        return f"PTX compute_{jit[-1]}, compiled by the driver"
    return None


def driver_needed(cuda_version: str) -> Optional[tuple[int, str]]:
    """(CUDA API version the driver must support, e.g. 13000; the driver series)
    for a build with the CUDA toolkit ``cuda_version``: a CUDA X.Y runtime runs on
    any driver of CUDA X.0 or later (minor-version compatibility)."""
    m = re.match(r"(\d+)\.", cuda_version or "")
    if not m:
        return None
    major = int(m.group(1))
    series = {11: ">= 450.80.02", 12: ">= 525.60.13", 13: ">= 580.65.06"}.get(major, f"for CUDA {major}.0")
    return major * 1000, series


@dataclass
class Gpu:
    index: int
    name: str
    cc: int  # compute capability, 10 * major + minor


@dataclass
class Driver:
    found: bool
    error: Optional[str] = None
    version: int = 0  # cuDriverGetVersion: 1000 * major + 10 * minor
    gpus: list[Gpu] = field(default_factory=list)

    @property
    def version_text(self) -> str:
        return f"{self.version // 1000}.{self.version % 1000 // 10}"


_CUDA_ERRORS = {
    3: "CUDA_ERROR_NOT_INITIALIZED",
    34: "CUDA_ERROR_STUB_LIBRARY (a stub libcuda.so.1, not the driver's)",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    100: "CUDA_ERROR_NO_DEVICE",
    101: "CUDA_ERROR_INVALID_DEVICE",
    304: "CUDA_ERROR_OPERATING_SYSTEM",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    999: "CUDA_ERROR_UNKNOWN",
}


@functools.lru_cache(maxsize=1)
def driver() -> Driver:
    """The NVIDIA driver and GPUs of this machine, asked through libcuda.so.1."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return Driver(found=False, error="no NVIDIA driver (libcuda.so.1 not found)")
    version = ctypes.c_int(0)
    if cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        version.value = 0
    rc = cuda.cuInit(0)
    if rc == 100:
        return Driver(found=True, version=version.value)
    if rc != 0:
        return Driver(
            found=True,
            version=version.value,
            error=f"the NVIDIA driver did not start: {_CUDA_ERRORS.get(rc, 'CUDA error')} ({rc})",
        )
    count = ctypes.c_int(0)
    cuda.cuDeviceGetCount(ctypes.byref(count))
    gpus = []
    for i in range(count.value):
        dev = ctypes.c_int(0)
        if cuda.cuDeviceGet(ctypes.byref(dev), i) != 0:
            continue
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)  # COMPUTE_CAPABILITY_MAJOR
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)  # COMPUTE_CAPABILITY_MINOR
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, 256, dev)
        gpus.append(Gpu(i, name.value.decode(errors="replace"), 10 * major.value + minor.value))
    return Driver(found=True, version=version.value, gpus=gpus)


def cuda_built() -> bool:
    """Whether ``heatbath._cuda`` was compiled into this installation."""
    try:
        from . import _cuda  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_unavailable_reason() -> Optional[str]:
    """Why CUDA arrays cannot be used with heatbath here, or None when they can:
    the CUDA module not built, no NVIDIA driver or one too old for the build,
    no GPU, no GPU that the compiled architectures run on, or cupy missing."""
    if not cuda_built():
        return "heatbath._cuda was not built (no nvcc when this heatbath was built)"
    info = build_info()
    d = driver()
    if not d.found or d.error:
        return d.error
    need = driver_needed(info.get("cuda_version", ""))
    if need and d.version and d.version < need[0]:
        return (
            f"the NVIDIA driver supports CUDA {d.version_text}; this heatbath was built with CUDA "
            f"{info['cuda_version']} and needs a driver {need[1]}"
        )
    if not d.gpus:
        return "no CUDA GPU is visible"
    archs = info.get("cuda_architectures") or []
    if archs and not any(runs_on(archs, g.cc) for g in d.gpus):
        gpus = ", ".join(f"{g.name} (sm_{g.cc})" for g in d.gpus)
        return f"no GPU here runs the architectures compiled in ({architectures_text(archs)}): {gpus}"
    try:
        import cupy
    except ImportError:
        return "cupy is not installed (`pip install heatbath[cuda]` installs it)"
    try:
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
    except Exception as exc:  # cupy built for another CUDA, ...
        return f"cupy cannot use the GPU: {exc}"
    return "cupy sees no CUDA GPU"
