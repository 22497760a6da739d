"""Gaussian diffusion: the forward process, the posterior and the
Sohl-Dickstein reverse step, each one fused pass over memory.

Timesteps may be one int or one per sample (an int array of shape (batch,)).
Noise is Philox (``seed``, ``offset``) drawn inside the kernel (element ``i``
of the flattened array is ``heatbath.random.normal(size, seed, offset)[i]``)
unless given.
"""

from __future__ import annotations

from typing import Any, Tuple, Union

import numpy as np

from .. import _backend
from ..random import _as_u64, as_seed
from ..schedules import NoiseSchedule, as_schedule
from . import _kernels as K

__all__ = ["q_sample", "posterior_mean_variance", "sohl_dickstein_step"]


def _seed_offset(seed: Any, offset: Any, n: int) -> Tuple[int, int]:
    s = as_seed(seed)
    off = _as_u64(offset, "offset")
    if off + n > (1 << 64):
        raise ValueError(f"'offset': offset + size ({off} + {n}) runs past the end of the stream")
    return s, off


def schedule_tables(sch: NoiseSchedule) -> dict:
    """The device coefficient tables cached on a schedule."""
    return sch.__dict__.setdefault("_device_tables", {})


def q_rows(sch: NoiseSchedule) -> np.ndarray:
    """Coefficient rows of q_sample for every timestep."""
    rows = K.new_coefs(sch.num_train_timesteps)
    rows[:, K.AX] = sch.sqrt_alphas_cumprod
    rows[:, K.SIGMA] = sch.sqrt_one_minus_alphas_cumprod
    return rows


def velocity_rows(sch: NoiseSchedule) -> np.ndarray:
    """Coefficient rows of the v-prediction target for every timestep."""
    rows = K.new_coefs(sch.num_train_timesteps)
    rows[:, K.AX] = -sch.sqrt_one_minus_alphas_cumprod
    rows[:, K.AM] = sch.sqrt_alphas_cumprod
    return rows


def q_sample(
    x0: Any,
    t: Any,
    schedule: Union[NoiseSchedule, str] = "linear",
    seed: Any = None,
    offset: int = 0,
    *,
    noise: Any = None,
    return_noise: bool = False,
    stream: int = 0,
    _names: Tuple[str, str, str] = ("x0", "t", "noise"),
) -> Any:
    """A draw of ``x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x0, (1 - abar_t) I)``.

    Parameters
    ----------
    x0 : array (batch, ...), float32 or float64 (numpy, cupy, torch, jax)
    t : int or int array (batch,)
    schedule : NoiseSchedule or name
    seed, offset : Philox noise address (ignored when ``noise`` is given)
    noise : array like x0, optional
        The standard normals to use.
    return_noise : bool
        Also return the noise (the epsilon-prediction training target).

    Returns
    -------
    x_t (like x0), or (x_t, noise) when ``return_noise``.
    """
    x_name, t_name, z_name = _names
    sch = as_schedule(schedule)
    x, fw = K.to_backend(x0, x_name)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"'{x_name}': expected dtype float32 or float64, got {x.dtype}")
    td = None if isinstance(t, (int, np.integer)) else K.device_timesteps(t, t_name)
    coef = table = None
    if td is not None:
        if not _backend.is_cupy(x):
            raise ValueError(f"'{t_name}': on a GPU while '{x_name}' is not; pass host timesteps")
        st = K.layout(x, td, force_rows=False, name=x_name, t_name=t_name)
        table = K.device_table(schedule_tables(sch), "q_sample", st.x, lambda: (q_rows(sch), None))
    else:
        st = K.layout(x, sch.check_timesteps(t, t_name), force_rows=False, name=x_name, t_name=t_name)
        coef = K.new_coefs(st.rows)
        coef[:, K.AX] = sch.sqrt_alphas_cumprod[st.t]
        coef[:, K.SIGMA] = sch.sqrt_one_minus_alphas_cumprod[st.t]
    z = None
    if noise is not None:
        zz, _ = K.to_backend(noise, z_name)
        z = K.as_rows(zz, st, z_name)
    s, off = _seed_offset(0 if z is not None else seed, offset, st.rows * st.inner)
    out = K.empty_like(st.x)
    zout = K.empty_like(st.x) if (return_noise and z is None) else None
    K.fused_step(
        st.x,
        coef,
        out,
        noise=z,
        noise_out=zout,
        draw=True,
        seed=s,
        offset=off,
        stream=stream,
        output_name=z_name,
        sample_name=x_name,
        table=table,
        tsteps=td,
    )
    res = K.from_backend(out.reshape(st.shape), fw)
    if return_noise:
        zr = noise if z is not None else K.from_backend(zout.reshape(st.shape), fw)
        return res, zr
    return res


def posterior_mean_variance(
    x0: Any, x_t: Any, t: Any, schedule: Union[NoiseSchedule, str] = "linear"
) -> Tuple[Any, np.ndarray, np.ndarray]:
    """The posterior ``q(x_{t-1} | x_t, x_0)``: mean (one fused pass),
    variance and clipped log variance.

    Parameters
    ----------
    x0, x_t : arrays of one shape (batch, ...), float32 or float64
    t : int or int array (batch,)
    schedule : NoiseSchedule or name

    Returns
    -------
    mean : array like x_t
        ``posterior_mean_coef1[t] x0 + posterior_mean_coef2[t] x_t``
    variance, log_variance_clipped : numpy float64 arrays
        Shape () for an int t, (batch, 1, ..., 1) (broadcastable) for per-sample t.
    """
    sch = as_schedule(schedule)
    x, fw = K.to_backend(x_t, "x_t")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"'x_t': expected dtype float32 or float64, got {x.dtype}")
    a, _ = K.to_backend(x0, "x0")
    tt = sch.check_timesteps(t, "t")
    st = K.layout(x, tt, force_rows=False, name="x_t", t_name="t")
    m = K.as_rows(a, st, "x0")
    coef = K.new_coefs(st.rows)
    coef[:, K.AX] = sch.posterior_mean_coef2[st.t]
    coef[:, K.AM] = sch.posterior_mean_coef1[st.t]
    out = K.empty_like(st.x)
    K.fused_step(st.x, coef, out, model_output=m, output_name="x0", sample_name="x_t")
    shape = () if tt.ndim == 0 else (tt.shape[0],) + (1,) * (len(st.shape) - 1)
    var = sch.posterior_variance[tt].reshape(shape)
    logv = sch.posterior_log_variance_clipped[tt].reshape(shape)
    return K.from_backend(out.reshape(st.shape), fw), var, logv


def sohl_dickstein_step(
    mu: Any,
    sigma2: Any,
    seed: Any = None,
    offset: int = 0,
    *,
    noise: Any = None,
    stream: int = 0,
) -> Any:
    """The reverse step of Sohl-Dickstein et al. (2015):
    ``x_{t-1} = mu + sqrt(Sigma) z`` for a model that outputs the mean and the
    diagonal covariance of ``p(x_{t-1} | x_t)``.

    Parameters
    ----------
    mu : array (...), float32 or float64
        The model's mean.
    sigma2 : array like mu
        The model's diagonal covariance (variances, >= 0).
    seed, offset, noise : as in :func:`q_sample`

    Returns
    -------
    array like mu
    """
    m, fw = K.to_backend(mu, "mu")
    if m.dtype not in (np.float32, np.float64):
        raise TypeError(f"'mu': expected dtype float32 or float64, got {m.dtype}")
    v, _ = K.to_backend(sigma2, "sigma2")
    st = K.layout(m, np.asarray(0), force_rows=False, name="mu")
    vv = K.as_rows(v, st, "sigma2")
    xp = st.xp
    if not bool(xp.all((vv >= 0) & (vv < np.inf))):
        raise ValueError("'sigma2': variances must be finite and >= 0")
    z = None
    if noise is not None:
        zz, _ = K.to_backend(noise, "noise")
        z = K.as_rows(zz, st, "noise")
    s, off = _seed_offset(0 if z is not None else seed, offset, st.rows * st.inner)
    coef = K.new_coefs(1)
    coef[:, K.AM] = 1.0
    coef[:, K.SIGMA] = 1.0
    out = K.empty_like(st.x)
    K.fused_step(
        st.x,
        coef,
        out,
        model_output=st.x,
        variance=vv,
        noise=z,
        draw=True,
        var_mode=K.VAR_GIVEN,
        seed=s,
        offset=off,
        stream=stream,
        output_name="mu",
        sample_name="mu",
    )
    return K.from_backend(out.reshape(st.shape), fw)
