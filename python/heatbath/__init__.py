"""heatbath: deep unsupervised learning with the tools of nonequilibrium
thermodynamics (diffusion probabilistic models, Boltzmann machines, Gibbs
samplers), on C++ and CUDA kernels.

numpy arrays run on the CPU kernels (``heatbath._core``), cupy arrays on the
CUDA kernels (``heatbath._cuda``, built when nvcc is found).
"""

from __future__ import annotations

from . import random, schedules
from ._blas import get_blas_threads, set_blas_threads
from ._backend import (
    cpu_level,
    cpu_levels,
    cuda_built,
    cuda_unavailable_reason,
    get_num_threads,
    has_cuda,
    set_num_threads,
    threads,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "cpu_level",
    "cpu_levels",
    "cuda_built",
    "cuda_unavailable_reason",
    "get_blas_threads",
    "get_num_threads",
    "has_cuda",
    "random",
    "schedules",
    "set_blas_threads",
    "set_num_threads",
    "threads",
]
