"""DDIM on torch tensors in diffusers' float32 operation order.

A pipeline that hands :class:`~heatbath.diffusion.DDIMScheduler` torch
tensors gets the step computed with torch operations in the order, precision
and rounding of diffusers' ``DDIMScheduler.step``, on float32 tables built the
way diffusers builds them (``torch.linspace`` betas, ``torch.cumprod``, kept on
the CPU), so a deterministic run (eta = 0) reproduces diffusers' images to the
bit: the same torch operations run on the same devices as under diffusers.
The fused kernel keeps float64 tables and one rounding per output; it serves
numpy, cupy and jax arrays, and torch tensors when the scheduler's
``torch_exact`` attribute is set to False.

The noise of a stochastic step (eta > 0) is heatbath's Philox stream (seed,
stream, offset + flat index), exactly as on the fused path, or the
``variance_noise``/``noise`` given.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import random as hr
from ..random import _as_u64
from ._scheduler_base import SchedulerOutput, _seed_of


def is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def torch_tables(sched: Any) -> Tuple[Any, Any]:
    """(alphas_cumprod, final_alpha_cumprod) as float32 CPU torch tensors,
    computed as diffusers' ``DDIMScheduler.__init__`` does. They stay on the
    CPU, as diffusers' do: their 0-d entries enter a step on a GPU as
    scalars, so the device runs the same operations as under diffusers."""
    cached = sched.__dict__.get("_torch_tables")
    if cached is not None:
        return cached
    import torch

    c = sched.config
    T = int(c.num_train_timesteps)
    if c.trained_betas is not None:
        betas = torch.tensor(c.trained_betas, dtype=torch.float32)
    elif c.beta_schedule == "linear":
        betas = torch.linspace(c.beta_start, c.beta_end, T, dtype=torch.float32)
    elif c.beta_schedule == "scaled_linear":
        betas = torch.linspace(c.beta_start**0.5, c.beta_end**0.5, T, dtype=torch.float32) ** 2
    else:
        # diffusers computes these in float64 Python floats and stores float32
        from ..schedules import NoiseSchedule

        raw = NoiseSchedule(c.beta_schedule, T, c.beta_start, c.beta_end).betas
        betas = torch.tensor(np.asarray(raw, dtype=np.float64), dtype=torch.float32)
    if c.rescale_betas_zero_snr:
        betas = _rescale_zero_terminal_snr(betas)
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    final = torch.tensor(1.0) if c.set_alpha_to_one else alphas_cumprod[0]
    sched._torch_tables = (alphas_cumprod, final)
    return sched._torch_tables


def _rescale_zero_terminal_snr(betas: Any) -> Any:
    """Lin et al. (2024), Algorithm 1, in diffusers' float32 torch operations."""
    import torch

    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    s = alphas_cumprod.sqrt()
    s0, sT = s[0].clone(), s[-1].clone()
    s -= sT
    s *= s0 / (s0 - sT)
    abar = s**2
    alphas = torch.cat([abar[0:1], abar[1:] / abar[:-1]])
    return 1 - alphas


def ddim_step(
    sched: Any,
    model_output: Any,
    t: int,
    sample: Any,
    eta: float,
    use_clipped_model_output: bool,
    noise: Any,
) -> Tuple[Any, Any]:
    """(prev_sample, pred_original_sample) of one DDIM step, diffusers' float32
    torch operations in diffusers' order. ``noise`` (a tensor like
    ``sample``) is used only when ``eta > 0``."""
    A, final = torch_tables(sched)
    c = sched.config
    prev = t - c.num_train_timesteps // sched.num_inference_steps
    a_t = A[t]
    a_prev = A[prev] if prev >= 0 else final
    b_t = 1 - a_t
    p = c.prediction_type
    if p == "epsilon":
        x0 = (sample - b_t ** (0.5) * model_output) / a_t ** (0.5)
        eps = model_output
    elif p == "sample":
        x0 = model_output
        eps = (sample - a_t ** (0.5) * x0) / b_t ** (0.5)
    else:  # v_prediction
        x0 = (a_t**0.5) * sample - (b_t**0.5) * model_output
        eps = (a_t**0.5) * model_output + (b_t**0.5) * sample
    if c.clip_sample:
        x0 = x0.clamp(-c.clip_sample_range, c.clip_sample_range)
    b_prev = 1 - a_prev
    variance = (b_prev / b_t) * (1 - a_t / a_prev)
    std = eta * variance ** (0.5)
    if use_clipped_model_output:
        eps = (sample - a_t ** (0.5) * x0) / b_t ** (0.5)
    direction = (1 - a_prev - std**2) ** (0.5) * eps
    out = a_prev ** (0.5) * x0 + direction
    if eta > 0:
        out = out + std * noise
    return out, x0


def step(
    sched: Any,
    model_output: Any,
    timestep: Any,
    sample: Any,
    eta: float,
    uc: bool,
    seed: Any,
    offset: Any,
    generator: Any,
    given: Any,
    stream: int,
) -> Optional[SchedulerOutput]:
    """``DDIMScheduler.step`` for a torch ``sample``, with its checks, or None
    where the fused kernel must serve (per-sample timesteps)."""
    import torch

    sched._require_timesteps()
    if not is_torch(model_output):
        raise TypeError(
            f"'model_output': expected a torch tensor like 'sample', got {type(model_output).__name__}"
        )
    if sample.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"'sample': expected dtype float32 or float64, got {sample.dtype}")
    if model_output.dtype != sample.dtype:
        raise TypeError(
            f"'model_output': dtype {model_output.dtype} does not match 'sample' dtype {sample.dtype}"
        )
    if model_output.device != sample.device:
        raise ValueError("'model_output': must be on the same device as 'sample'")
    if tuple(model_output.shape) != tuple(sample.shape):
        raise ValueError(
            f"'model_output': shape {tuple(model_output.shape)} does not match 'sample' shape "
            f"{tuple(sample.shape)} (expected the sample's shape)"
        )
    t = sched.schedule.check_timesteps(timestep)
    if t.size != 1:
        return None
    if sched.check_finite:  # one pass over each (diffusers checks nothing)
        for name, a in (("model_output", model_output), ("sample", sample)):
            if not bool(torch.isfinite(a).all()):
                raise ValueError(f"'{name}': contains NaN or inf")
    z = None
    if eta > 0:
        if given is not None:
            if not is_torch(given) or tuple(given.shape) != tuple(sample.shape):
                raise ValueError(
                    f"'noise': expected a torch tensor of the sample's shape {tuple(sample.shape)}"
                )
            z = given.to(device=sample.device, dtype=sample.dtype)
        else:
            z = _philox_noise(sched, sample, seed, offset, generator, stream)
    with torch.no_grad():
        prev, x0 = ddim_step(sched, model_output.detach(), int(t.reshape(-1)[0]), sample.detach(), eta, uc, z)
    return SchedulerOutput(prev, x0)


def _philox_noise(sched: Any, sample: Any, seed: Any, offset: Any, generator: Any, stream: int) -> Any:
    """heatbath's Philox normals for a torch step: the draws the fused kernel
    would make (seed, stream, offset + flat index)."""
    import torch

    if seed is not None and generator is not None:
        raise ValueError("'generator': give either seed or generator, not both")
    s = _seed_of(generator if seed is None else seed)
    n = int(sample.numel())
    off = sched._noise_offset if offset is None else _as_u64(offset, "offset")
    if off + n > (1 << 64):
        raise ValueError(f"'offset': offset + size ({off} + {n}) runs past the end of the stream")
    sched._noise_offset = off + n
    dt = "float32" if sample.dtype == torch.float32 else "float64"
    return torch.from_numpy(hr.normal(tuple(sample.shape), s, off, dt, stream=stream)).to(sample.device)
