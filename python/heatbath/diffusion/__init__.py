"""Diffusion probabilistic models: Gaussian and binomial diffusion, samplers,
the bound K, training."""

from __future__ import annotations

from ._kernels import check_errors
from .binomial import BinomialDPM
from .dpm import GaussianDPM
from .gaussian import posterior_mean_variance, q_sample, sohl_dickstein_step
from .sampling import sample
from .schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, SchedulerOutput

__all__: list[str] = [
    "check_errors",
    "BinomialDPM",
    "GaussianDPM",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "SchedulerOutput",
    "posterior_mean_variance",
    "q_sample",
    "sample",
    "sohl_dickstein_step",
]
