"""Array-module dispatch: numpy arrays run on ``heatbath._core``, cupy arrays
on ``heatbath._cuda``.

cupy arrays are taken through ``__cuda_array_interface__``: dtype, shape,
contiguity and device are checked here, and the kernels receive a device
pointer, an element count and the current cupy stream.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Iterator, Optional

import numpy as np

from . import _core, _install

_CUDA_HINT = (
    "heatbath was built without its CUDA module (heatbath._cuda). Reinstall on a machine where "
    "nvcc is on PATH (or CUDACXX is set), e.g. `HEATBATH_CUDA=ON pip install heatbath[cuda]`."
)


def is_cupy(x: Any) -> bool:
    """True for a cupy ndarray (checked without importing cupy)."""
    return type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "__cuda_array_interface__")


def cuda_module():
    """The compiled CUDA module, or a RuntimeError that says how to get it."""
    try:
        from . import _cuda  # type: ignore[attr-defined]
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise RuntimeError(_CUDA_HINT) from exc
    return _cuda


def cuda_built() -> bool:
    """Whether ``heatbath._cuda`` was compiled into this installation."""
    return _install.cuda_built()


def cuda_unavailable_reason() -> Optional[str]:
    """Why CUDA arrays cannot be used here (None when they can): the CUDA
    module is not built, no NVIDIA driver or one too old for the build, no
    GPU that the compiled architectures run on, or cupy is missing."""
    return _install.cuda_unavailable_reason()


gpu_unavailable_reason = cuda_unavailable_reason


def has_cuda() -> bool:
    """Whether CUDA arrays can be used: the CUDA module is built, the driver
    runs it on a visible GPU, and cupy imports (``cuda_unavailable_reason()``
    says why not)."""
    return cuda_unavailable_reason() is None


def cupy_module():
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError("cupy is not installed; `pip install heatbath[cuda]` installs it") from exc
    return cupy


def device_pointer(arr: Any) -> int:
    return int(arr.__cuda_array_interface__["data"][0])


def current_stream() -> int:
    """The current cupy stream as an integer handle (0 is the legacy default)."""
    return int(cupy_module().cuda.get_current_stream().ptr)


@contextlib.contextmanager
def on_device(arr: Any) -> Iterator[None]:
    """Make the device that holds ``arr`` current while launching."""
    with arr.device:
        yield


def get_num_threads() -> int:
    """Number of OpenMP threads the CPU kernels use."""
    return int(_core.get_num_threads())


MAX_THREADS = int(_core.MAX_THREADS)


def set_num_threads(n: int) -> None:
    """Set the number of OpenMP threads the CPU kernels use (results do not
    depend on it): an int in [1, 1024]."""
    if isinstance(n, (bool, np.bool_)):
        raise TypeError("'n': expected an int, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"'n': expected an int, got {type(n).__name__}") from None
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"'n': must lie in [1, {MAX_THREADS}], got {n}")
    _core.set_num_threads(n)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Context manager: run the CPU kernels with ``n`` threads inside the block."""
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


def cpu_level() -> str:
    """The instruction-set level the CPU kernels run at: 'base', 'avx2' or 'avx512'."""
    return str(_core.cpu_level())


def cpu_levels() -> list[str]:
    """Levels compiled in and supported by this CPU, best last."""
    return list(_core.cpu_levels())


@contextlib.contextmanager
def cpu_level_as(level: str) -> Iterator[None]:
    """Context manager: force one instruction-set level (for testing that all
    levels agree to the bit)."""
    old = cpu_level()
    _core.set_cpu_level(level)
    try:
        yield
    finally:
        _core.set_cpu_level(old)


def array_namespace(x: Any):
    """numpy or cupy, by the type of ``x``."""
    return cupy_module() if is_cupy(x) else np
