"""The whole reverse-diffusion loop around any callable model."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np

from .. import _backend
from .. import random as hr
from ..random import as_seed
from . import _kernels as K
from .gaussian import q_sample

__all__ = ["sample"]


def _as_shape(shape: Union[int, Sequence[int]]) -> tuple:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"'shape': expected an int or a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"'shape': dimensions must be non-negative, got {dims}")
    return dims


def sample(
    model: Callable[[Any, int], Any],
    shape: Union[int, Sequence[int]],
    scheduler: Any,
    steps: Optional[int] = None,
    seed: Any = None,
    x_T: Any = None,
    callback: Optional[Callable[[int, int, Any], Any]] = None,
    progress: bool = True,
    *,
    dtype: Any = "float32",
    device: Optional[str] = None,
    known: Any = None,
    mask: Any = None,
    step_kwargs: Optional[Dict[str, Any]] = None,
) -> Any:
    """Draw samples by running ``scheduler`` backwards from pure noise.

    Parameters
    ----------
    model : callable ``model(x_t, t) -> model_output``
        Any callable: x_t comes in the framework of ``x_T`` (numpy when
        ``x_T`` is None, cupy for ``device="cuda"``), passed by DLPack without
        copies; ``t`` is a Python int. The output may be numpy, cupy, torch or
        jax, of x_t's shape (or (batch, 2C, ...) for a learned variance).
    shape : tuple of int
        Shape of the batch, e.g. (64, 3, 64, 64).
    scheduler : DDPMScheduler, DDIMScheduler or DPMSolverMultistepScheduler
    steps : int, optional
        Number of sampling steps (``scheduler.set_timesteps(steps)``); None
        keeps the scheduler's current timesteps.
    seed : int, optional
        Philox seed of every draw: x_T is ``heatbath.random.normal(shape,
        seed, 0)``, step i draws at offset ``(i + 1) * size``; the known
        pixels' forward noise uses stream 1. None: fresh entropy.
    x_T : array, optional
        Starting noise (numpy, cupy, torch or jax); the result comes back in
        its framework.
    callback : callable ``callback(i, t, x)``, optional
        Called after each step with the step index, timestep and new sample.
    progress : bool
        Show a tqdm progress bar.
    dtype : {"float32", "float64"}
        dtype of the generated x_T.
    device : {"cpu", "cuda"}, optional
        Where to generate x_T (cuda: cupy arrays, GPU kernels).
    known, mask : arrays of ``shape``, optional
        Inpainting / conditioning by a known part (Sohl-Dickstein et al. 2015,
        "multiplying distributions" with r = a delta on the known pixels): where
        ``mask`` is true (or 1) the sample is held at ``known`` forward-noised
        to the current timestep, ``q(x_t | x_0 = known)``; the final sample
        equals ``known`` there.
    step_kwargs : dict, optional
        Extra keyword arguments of ``scheduler.step`` (e.g. ``{"eta": 1.0}``).

    Returns
    -------
    array of ``shape`` (framework of ``x_T``, numpy by default)
    """
    s = as_seed(seed)
    if steps is not None:
        scheduler.set_timesteps(steps)
    if getattr(scheduler, "num_inference_steps", None) is None:
        raise RuntimeError("'scheduler': call scheduler.set_timesteps(n) or pass 'steps'")
    if x_T is None:
        dims = _as_shape(shape)
        x = hr.normal(dims, s, 0, dtype=dtype, device=device)
        fw = "cupy" if _backend.is_cupy(x) else "numpy"
    else:
        x, fw = K.to_backend(x_T, "x_T")
        if shape is not None and tuple(x.shape) != _as_shape(shape):
            raise ValueError(f"'x_T': shape {tuple(x.shape)} does not match 'shape' {_as_shape(shape)}")
        x = _backend.array_namespace(x).array(x, copy=True)
    xp = _backend.array_namespace(x)
    n = int(x.size)
    kn = mk = None
    if (known is None) != (mask is None):
        raise ValueError("'mask': give both 'known' and 'mask' for inpainting, or neither")
    if known is not None:
        kn, _ = K.to_backend(known, "known")
        mk, _ = K.to_backend(mask, "mask")
        if tuple(kn.shape) != tuple(x.shape):
            raise ValueError(
                f"'known': shape {tuple(kn.shape)} does not match the sample shape {tuple(x.shape)}"
            )
        if tuple(mk.shape) != tuple(x.shape):
            raise ValueError(
                f"'mask': shape {tuple(mk.shape)} does not match the sample shape {tuple(x.shape)}"
            )
        kn = xp.asarray(kn, dtype=x.dtype)
        mk = xp.asarray(mk).astype(bool)
    kw = dict(step_kwargs or {})
    timesteps = [int(t) for t in np.asarray(scheduler.timesteps)]

    def hold(x: Any, t: int, i: int) -> Any:
        if t < 0:
            return xp.where(mk, kn, x)
        xk = q_sample(kn, t, scheduler.schedule, s, i * n, stream=1)
        return xp.where(mk, xk, x)

    if kn is not None:
        x = hold(x, timesteps[0], 0)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(timesteps), disable=not progress, desc="sampling")
    try:
        for i, t in enumerate(timesteps):
            xin = K.from_backend(scheduler.scale_model_input(x, t), fw)
            out = model(xin, t)
            res = scheduler.step(out, t, x, seed=s, offset=(i + 1) * n, **kw)
            x = res.prev_sample
            if kn is not None:
                t_next = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                x = hold(x, t_next, i + 1)
            if callback is not None:
                callback(i, t, K.from_backend(x, fw))
            bar.update(1)
    finally:
        bar.close()
    return K.from_backend(x, fw)
