"""The whole reverse-diffusion loop around any callable model."""

from __future__ import annotations

import operator

from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np

from .. import _backend
from .. import random as hr
from .._guard import as_mask
from ..random import as_seed
from . import _kernels as K
from .gaussian import q_sample

__all__ = ["sample"]


def _check_finite(a: Any, name: str) -> None:
    """Real numbers, all finite (one pass; the loop's kernels would report a
    NaN under their own argument names)."""
    if a.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected real numbers, got dtype {a.dtype}")
    if not bool(_backend.array_namespace(a).isfinite(a).all()):
        raise ValueError(f"'{name}': contains NaN or infinite values")


def _as_shape(shape: Union[int, Sequence[int]]) -> tuple:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    try:
        if isinstance(shape, (str, bytes)) or any(isinstance(d, (bool, np.bool_)) for d in shape):
            raise TypeError
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"'shape': expected an int or a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"'shape': dimensions must be non-negative, got {dims}")
    if int(np.prod(dims, dtype=object)) > 2**40:
        raise ValueError(f"'shape': {dims} holds more than 2**40 values")
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
    grad_log_r: Optional[Callable[[Any, int], Any]] = None,
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
    grad_log_r : callable ``grad_log_r(x, t) -> array``, optional
        Conditioning by a smooth factor r(x) (Sohl-Dickstein et al. 2015, section
        2.5: for a differentiable log r the product p(x_{t-1} | x_t) r(x_{t-1}) is
        approximately Gaussian with the perturbed mean ``mu + Sigma grad log
        r(mu)``): each step draws ``x_{t-1} = mu + Sigma g + sqrt(Sigma) z``, with
        mu and Sigma the step's mean and variance and g the gradient at mu. Needs
        a DDPMScheduler with a fixed variance type; z is the noise the plain step
        would draw.
    step_kwargs : dict, optional
        Extra keyword arguments of ``scheduler.step`` (e.g. ``{"eta": 1.0}``).

    Returns
    -------
    array of ``shape`` (framework of ``x_T``, numpy by default)

    Raises
    ------
    ValueError
        When a model output was NaN or infinite: at that step on the CPU; on
        the GPU, whose steps never wait for the device, once at the end.
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
        _check_finite(x, "x_T")
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
        _check_finite(kn, "known")
        kn = xp.asarray(kn, dtype=x.dtype)
        mk = as_mask(mk, "mask", xp)
    kw = dict(step_kwargs or {})
    if grad_log_r is not None:
        from .schedulers import DDPMScheduler

        if not isinstance(scheduler, DDPMScheduler) or scheduler.variance_type not in (
            "fixed_small",
            "fixed_small_log",
            "fixed_large",
        ):
            raise ValueError("'grad_log_r': needs a DDPMScheduler with a fixed variance type")
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
            if grad_log_r is None:
                x = scheduler.step(out, t, x, seed=s, offset=(i + 1) * n, **kw).prev_sample
            else:
                x = _guided_step(scheduler, out, t, x, s, (i + 1) * n, grad_log_r, fw, xp)
            if kn is not None:
                t_next = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                x = hold(x, t_next, i + 1)
            if callback is not None:
                callback(i, t, K.from_backend(x, fw))
            bar.update(1)
    finally:
        bar.close()
    if _backend.is_cupy(x):
        K.check_errors(x)  # the one read of the device's error counters (GPU steps never wait)
    return K.from_backend(x, fw)


def _guided_step(
    scheduler: Any, out: Any, t: int, x: Any, seed: int, offset: int, grad_log_r: Callable, fw: str, xp: Any
) -> Any:
    """x_{t-1} = mu + Sigma grad log r(mu) + sqrt(Sigma) z (perturbed mean)."""
    mean = scheduler.step(out, t, x, noise=xp.zeros_like(x)).prev_sample
    sigma = float(scheduler._coefs(np.array([t], dtype=np.int64))[0, K.SIGMA])
    if sigma == 0.0:
        return mean
    g, _ = K.to_backend(grad_log_r(K.from_backend(mean, fw), t), "grad_log_r")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"'grad_log_r': returned shape {tuple(g.shape)}, expected {tuple(x.shape)}")
    z = hr.normal(
        x.shape, seed, offset, dtype=np.dtype(x.dtype).name, device="cuda" if _backend.is_cupy(x) else None
    )
    return (mean + (sigma * sigma) * xp.asarray(g, dtype=x.dtype) + sigma * z).astype(x.dtype, copy=False)
