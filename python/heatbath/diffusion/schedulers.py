"""Drop-in schedulers with diffusers' names and call shapes, on fused kernels.

``DDPMScheduler``, ``DDIMScheduler`` and ``DPMSolverMultistepScheduler`` take
the constructor arguments of their diffusers namesakes (same defaults), and
offer ``set_timesteps(n, timestep_spacing=...)``, ``scale_model_input``,
``add_noise`` and ``step(model_output, timestep, sample, seed=..., offset=...)``
returning an object with ``.prev_sample`` and ``.pred_original_sample``. An
existing loop ports by changing the import::

    scheduler.set_timesteps(50)
    for t in scheduler.timesteps:
        eps = model(x, t)
        x = scheduler.step(eps, t, x, seed=0).prev_sample

Differences from diffusers, all deliberate:

* the noise of a stochastic step is Philox (``seed``, ``offset``) drawn inside
  the kernel (``heatbath.random.normal(x.shape, seed, offset)``, exactly), or
  the ``noise`` argument. ``seed=None`` draws a fresh seed; ``offset=None``
  continues after the previous step's draws (reset by ``set_timesteps``);
  ``generator`` may be a numpy or torch Generator (it supplies the seed);
* ``timestep`` may be a per-sample integer array of shape (batch,);
* all tables are float64 (diffusers keeps float32 betas);
* stepping before ``set_timesteps`` raises, and so do NaN or infinite model
  outputs, out-of-range timesteps and shape mismatches, each naming the
  argument;
* numpy, cupy, torch and jax arrays are accepted (torch/jax by DLPack, no
  copy) and results come back in the sample's framework.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _backend
from ..random import _as_u64, as_seed
from ..schedules import NoiseSchedule
from . import _kernels as K
from ._kernels import Step, as_rows, layout
from .gaussian import q_sample

__all__ = [
    "SchedulerOutput",
    "DDPMScheduler",
    "DDIMScheduler",
    "DPMSolverMultistepScheduler",
]

_PREDICTIONS = ("epsilon", "sample", "v_prediction")
_SPACINGS = ("linspace", "leading", "trailing")


class SchedulerOutput:
    """Result of ``step``: ``prev_sample`` and ``pred_original_sample`` (the
    clipped data prediction), indexable like diffusers' outputs (``out[0]``,
    ``out["prev_sample"]``, ``out.to_tuple()``)."""

    __slots__ = ("prev_sample", "pred_original_sample")

    def __init__(self, prev_sample: Any, pred_original_sample: Any = None) -> None:
        self.prev_sample = prev_sample
        self.pred_original_sample = pred_original_sample

    def to_tuple(self) -> tuple:
        if self.pred_original_sample is None:
            return (self.prev_sample,)
        return (self.prev_sample, self.pred_original_sample)

    def __getitem__(self, k: Union[int, str]) -> Any:
        if isinstance(k, str):
            return getattr(self, k)
        return self.to_tuple()[k]

    def __iter__(self):
        return iter(self.to_tuple())

    def __repr__(self) -> str:
        return f"SchedulerOutput(prev_sample={self.prev_sample!r})"


class _Config(dict):
    """diffusers-style config: a dict whose keys are also attributes."""

    def __getattr__(self, k: str) -> Any:
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def _index(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None


class _Scheduler:
    """Shared construction, timesteps, add_noise and step plumbing."""

    order = 1
    _default_spacing = "leading"
    _split_variance_types: Tuple[str, ...] = ()

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: Optional[Union[Sequence[float], np.ndarray]] = None,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        sample_max_value: float = 1.0,
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        timestep_spacing: Optional[str] = None,
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
        **extra: Any,
    ) -> None:
        if prediction_type not in _PREDICTIONS:
            raise ValueError(
                f"'prediction_type': expected one of {', '.join(_PREDICTIONS)}, got {prediction_type!r}"
            )
        spacing = self._default_spacing if timestep_spacing is None else timestep_spacing
        if spacing not in _SPACINGS:
            raise ValueError(f"'timestep_spacing': expected one of {', '.join(_SPACINGS)}, got {spacing!r}")
        if not 0 < dynamic_thresholding_ratio <= 1:
            raise ValueError(
                f"'dynamic_thresholding_ratio': must lie in (0, 1], got {dynamic_thresholding_ratio}"
            )
        if trained_betas is not None:
            self.schedule = NoiseSchedule(
                np.asarray(trained_betas, dtype=np.float64), rescale_zero_snr=rescale_betas_zero_snr
            )
        else:
            self.schedule = NoiseSchedule(
                beta_schedule,
                num_train_timesteps,
                beta_start,
                beta_end,
                rescale_zero_snr=rescale_betas_zero_snr,
            )
        self.config = _Config(
            num_train_timesteps=self.schedule.num_train_timesteps,
            beta_start=beta_start,
            beta_end=beta_end,
            beta_schedule=beta_schedule if trained_betas is None else "custom",
            prediction_type=prediction_type,
            thresholding=bool(thresholding),
            dynamic_thresholding_ratio=float(dynamic_thresholding_ratio),
            sample_max_value=float(sample_max_value),
            clip_sample=bool(clip_sample),
            clip_sample_range=float(clip_sample_range),
            timestep_spacing=spacing,
            steps_offset=_index(steps_offset, "steps_offset"),
            rescale_betas_zero_snr=bool(rescale_betas_zero_snr),
            **extra,
        )
        self.betas = self.schedule.betas
        self.alphas = self.schedule.alphas
        self.alphas_cumprod = self.schedule.alphas_cumprod.copy()
        self.init_noise_sigma = 1.0
        self.num_inference_steps: Optional[int] = None
        self.timesteps = np.arange(self.schedule.num_train_timesteps, dtype=np.int64)[::-1].copy()
        self._noise_offset = 0
        self._coef_cache: Dict[Any, np.ndarray] = {}
        self._pool = K.BufferPool()

    # ---- timesteps ----------------------------------------------------------

    def _spaced_timesteps(self, n: int, spacing: str) -> np.ndarray:
        T = self.config.num_train_timesteps
        if spacing == "linspace":
            return np.linspace(0, T - 1, n).round()[::-1].copy().astype(np.int64)
        if spacing == "leading":
            ratio = T // n
            return (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64) + self.config.steps_offset
        ratio = T / n
        return np.round(np.arange(T, 0, -ratio)).astype(np.int64) - 1

    def set_timesteps(
        self,
        num_inference_steps: Optional[int] = None,
        device: Any = None,
        timestep_spacing: Optional[str] = None,
        timesteps: Optional[Sequence[int]] = None,
    ) -> None:
        """Choose the sampling timesteps (diffusers' spacings).

        Parameters
        ----------
        num_inference_steps : int
            Number of sampling steps, 1 .. num_train_timesteps.
        device : ignored
            Accepted for diffusers compatibility (timesteps are a numpy array).
        timestep_spacing : {"linspace", "leading", "trailing"}, optional
            Overrides the constructor's spacing.
        timesteps : sequence of int, optional
            Custom strictly decreasing timesteps (instead of a count).
        """
        T = self.config.num_train_timesteps
        if timesteps is not None:
            if num_inference_steps is not None:
                raise ValueError("'timesteps': give either num_inference_steps or timesteps, not both")
            ts = self.schedule.check_timesteps(np.asarray(timesteps), "timesteps").reshape(-1)
            if ts.size == 0 or np.any(np.diff(ts) >= 0):
                raise ValueError("'timesteps': must be a non-empty, strictly decreasing sequence")
            self._set_timestep_array(ts)
            return
        if num_inference_steps is None:
            raise TypeError("'num_inference_steps': required (or pass 'timesteps')")
        n = _index(num_inference_steps, "num_inference_steps")
        if not 1 <= n <= T:
            raise ValueError(f"'num_inference_steps': must lie in [1, {T}], got {n}")
        spacing = self.config.timestep_spacing if timestep_spacing is None else timestep_spacing
        if spacing not in _SPACINGS:
            raise ValueError(f"'timestep_spacing': expected one of {', '.join(_SPACINGS)}, got {spacing!r}")
        ts = self._spaced_timesteps(n, spacing)
        if ts.size and (ts.min() < 0 or ts.max() >= T):
            raise ValueError(f"'steps_offset': timesteps {ts.min()}..{ts.max()} fall outside [0, {T})")
        self.num_inference_steps = n
        self._set_timestep_array(ts)

    def _set_timestep_array(self, ts: np.ndarray) -> None:
        self.timesteps = np.ascontiguousarray(ts, dtype=np.int64)
        self.num_inference_steps = int(ts.size)
        self._noise_offset = 0
        self._coef_cache.clear()
        self._index_of = {int(t): i for i, t in enumerate(self.timesteps)}

    def _require_timesteps(self) -> None:
        if self.num_inference_steps is None:
            raise RuntimeError(
                f"{type(self).__name__}.step: call set_timesteps(num_inference_steps) before step"
            )

    def scale_model_input(self, sample: Any, timestep: Any = None) -> Any:
        """The model input at ``timestep``: the sample itself for these
        schedulers (diffusers compatibility)."""
        return sample

    def previous_timestep(self, timestep: Any) -> Any:
        """The timestep after ``timestep`` in the sampling order (-1 after
        the last), per sample."""
        self._require_timesteps()
        t = self.schedule.check_timesteps(timestep)
        return self._prev_of(t)

    def _positions(self, t: np.ndarray) -> np.ndarray:
        try:
            return (
                np.vectorize(self._index_of.__getitem__, otypes=[np.int64])(t)
                if t.ndim
                else np.int64(self._index_of[int(t)])
            )
        except KeyError:
            raise ValueError(
                f"'timestep': {t.tolist()} is not among the scheduler's timesteps "
                f"{self.timesteps.tolist()[:8]}{'...' if self.timesteps.size > 8 else ''}"
            ) from None

    def _prev_of(self, t: np.ndarray) -> np.ndarray:
        pos = self._positions(t)
        ext = np.concatenate([self.timesteps, [-1]])
        return ext[pos + 1]

    # ---- forward process ----------------------------------------------------

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        """``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (q(x_t | x_0)) in one pass.

        Parameters
        ----------
        original_samples : array (batch, ...), float32 or float64
        noise : array of the same shape and dtype
        timesteps : int or int array (batch,)

        Returns
        -------
        array like ``original_samples`` (same framework)
        """
        return q_sample(original_samples, timesteps, self.schedule, noise=noise)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        """The v-prediction target ``sqrt(abar_t) noise - sqrt(1 - abar_t) x0``
        (``sample`` is x0, as in diffusers)."""
        x, fw = K.to_backend(sample, "sample")
        z, _ = K.to_backend(noise, "noise")
        t = self.schedule.check_timesteps(timesteps, "timesteps")
        st = layout(x, t, force_rows=False)
        coef = K.new_coefs(st.rows)
        coef[:, K.AX] = -self.schedule.sqrt_one_minus_alphas_cumprod[st.t]
        coef[:, K.AM] = self.schedule.sqrt_alphas_cumprod[st.t]
        out = K.empty_like(st.x)
        K.fused_step(st.x, coef, out, model_output=as_rows(z, st, "noise"), output_name="noise")
        return K.from_backend(out.reshape(st.shape), fw)

    # ---- step plumbing ------------------------------------------------------

    def _split(self) -> bool:
        return False

    def _prepare(self, model_output: Any, timestep: Any, sample: Any, per_row: bool) -> Step:
        self._require_timesteps()
        x, fw = K.to_backend(sample, "sample")
        m, _ = K.to_backend(model_output, "model_output")
        if _backend.is_cupy(x) != _backend.is_cupy(m):
            raise ValueError("'model_output': must be on the same device as 'sample'")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"'sample': expected dtype float32 or float64, got {x.dtype}")
        if m.dtype != x.dtype:
            raise TypeError(f"'model_output': dtype {m.dtype} does not match 'sample' dtype {x.dtype}")
        split = self._split()
        ok = tuple(m.shape) == tuple(x.shape)
        if split:
            ok = (
                x.ndim >= 2
                and m.ndim == x.ndim
                and m.shape[0] == x.shape[0]
                and m.shape[1] == 2 * x.shape[1]
                and tuple(m.shape[2:]) == tuple(x.shape[2:])
            )
        if not ok:
            want = "(batch, 2 * channels, ...) for a learned variance" if split else "the sample's shape"
            raise ValueError(
                f"'model_output': shape {tuple(m.shape)} does not match 'sample' shape "
                f"{tuple(x.shape)} (expected {want})"
            )
        t = self.schedule.check_timesteps(timestep)
        st = layout(x, t, force_rows=per_row or split)
        mm = m if m.flags.c_contiguous else _backend.array_namespace(m).ascontiguousarray(m)
        if split:
            m2 = mm.reshape(st.rows, 2 * st.inner)
            st.m, st.v = m2[:, : st.inner], m2[:, st.inner :]
        else:
            st.m, st.v = mm.reshape(st.rows, st.inner), None
        st.fw = fw
        return st

    def _noise_args(
        self, st: Step, seed: Any, offset: Any, noise: Any, generator: Any, stream: int
    ) -> Tuple[int, int, Any]:
        z = None
        if noise is not None:
            zz, _ = K.to_backend(noise, "noise")
            z = as_rows(zz, st, "noise")
        if seed is not None and generator is not None:
            raise ValueError("'generator': give either seed or generator, not both")
        s = _seed_of(generator if seed is None else seed)
        n = st.rows * st.inner
        if offset is None:
            off = self._noise_offset
        else:
            off = _as_u64(offset, "offset")
        if off + n > (1 << 64):
            raise ValueError(f"'offset': offset + size ({off} + {n}) runs past the end of the stream")
        self._noise_offset = off + n
        return s, off, z

    def _x0_coefs(self, abar: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(px, pm): the data prediction px x + pm m for this prediction type."""
        sa, s1 = np.sqrt(abar), np.sqrt(1.0 - abar)
        p = self.config.prediction_type
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == "epsilon":
                return 1.0 / sa, -s1 / sa
            if p == "sample":
                return np.zeros_like(sa), np.ones_like(sa)
            return sa, -s1

    def _threshold(self, st: Step, coef: np.ndarray) -> None:
        """Dynamic thresholding (Imagen): per sample s = clamp(quantile(|x0|,
        ratio), 1, sample_max_value); x0 -> clamp(x0, -s, s) / s."""
        c = K.new_coefs(coef.shape[0])
        c[:, K.AX], c[:, K.AM] = K.get_x0(coef)
        x0 = K.empty_like(st.x)
        K.fused_step(st.x, c, x0, model_output=st.m)
        xp = _backend.array_namespace(st.x)
        q = xp.quantile(xp.abs(x0), self.config.dynamic_thresholding_ratio, axis=1)
        s = np.clip(
            np.asarray(q.get() if _backend.is_cupy(q) else q, dtype=np.float64),
            1.0,
            self.config.sample_max_value,
        )
        coef[:, K.LO], coef[:, K.HI], coef[:, K.SCALE] = -s, s, 1.0 / s

    def _clip_mode(self) -> bool:
        return bool(self.config.thresholding or self.config.clip_sample)


def _seed_of(seed: Any) -> int:
    """A 64-bit Philox seed from an int, a numpy Generator, None (fresh
    entropy) or a torch.Generator (diffusers' ``generator=``: one 63-bit
    integer is drawn from it)."""
    if type(seed).__module__.split(".")[0] == "torch" and type(seed).__name__ == "Generator":
        import torch

        return int(torch.randint(0, 2**63 - 1, (1,), generator=seed).item())
    return as_seed(seed)


def _finish(st: Step, out: Any, x0: Any, return_dict: bool) -> Any:
    prev = K.from_backend(out.reshape(st.shape), st.fw)
    x0r = None if x0 is None else K.from_backend(x0.reshape(st.shape), st.fw)
    res = SchedulerOutput(prev, x0r)
    return res if return_dict else res.to_tuple()


class DDPMScheduler(_Scheduler):
    """Ancestral sampling of DDPM (Ho et al. 2020), diffusers' ``DDPMScheduler``.

    Parameters
    ----------
    num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas
        The schedule (see :mod:`heatbath.schedules`; every heatbath schedule
        name is accepted).
    variance_type : {"fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range"}
        ``fixed_small``: the posterior variance (clamped at 1e-20);
        ``fixed_large``: beta_t; ``learned``: the model's second half of
        channels is the variance; ``learned_range``: it is v in [-1, 1],
        log variance ``(v+1)/2 log beta_t + (1-v)/2 log posterior_variance``
        (improved DDPM).
    clip_sample : bool
        Clip the data prediction to ``[-clip_sample_range, clip_sample_range]``
        (diffusers' default True).
    prediction_type : {"epsilon", "sample", "v_prediction"}
    thresholding, dynamic_thresholding_ratio, sample_max_value
        Dynamic thresholding (Imagen) of the data prediction.
    timestep_spacing : {"leading", "linspace", "trailing"}
    steps_offset : int
    rescale_betas_zero_snr : bool
    """

    _default_spacing = "leading"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: Optional[Union[Sequence[float], np.ndarray]] = None,
        variance_type: str = "fixed_small",
        clip_sample: bool = True,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        clip_sample_range: float = 1.0,
        sample_max_value: float = 1.0,
        timestep_spacing: str = "leading",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        kinds = ("fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range")
        if variance_type not in kinds:
            raise ValueError(f"'variance_type': expected one of {', '.join(kinds)}, got {variance_type!r}")
        super().__init__(
            num_train_timesteps,
            beta_start,
            beta_end,
            beta_schedule,
            trained_betas,
            prediction_type,
            thresholding,
            dynamic_thresholding_ratio,
            sample_max_value,
            clip_sample,
            clip_sample_range,
            timestep_spacing,
            steps_offset,
            rescale_betas_zero_snr,
            variance_type=variance_type,
        )
        self.variance_type = variance_type

    def _split(self) -> bool:
        return self.variance_type in ("learned", "learned_range")

    def _coefs(self, t: np.ndarray) -> np.ndarray:
        """Coefficient rows for per-sample timesteps t (int64 array)."""
        prev = self._prev_of(t)
        A = self.alphas_cumprod
        a_t = A[t]
        a_prev = np.where(prev >= 0, A[np.maximum(prev, 0)], 1.0)
        b_t, b_prev = 1.0 - a_t, 1.0 - a_prev
        cur_alpha = a_t / a_prev
        cur_beta = 1.0 - cur_alpha
        px, pm = self._x0_coefs(a_t)
        c_x0 = np.sqrt(a_prev) * cur_beta / b_t
        c_t = np.sqrt(cur_alpha) * b_prev / b_t
        c = K.new_coefs(t.shape[0])
        K.set_x0(c, px, pm)
        if self._clip_mode():
            c[:, K.AX], c[:, K.C0] = c_t, c_x0
            r = self.config.clip_sample_range
            c[:, K.LO], c[:, K.HI] = -r, r
        else:
            c[:, K.AX] = c_t + c_x0 * px
            c[:, K.AM] = c_x0 * pm
        var = np.maximum(b_prev / b_t * cur_beta, 1e-20)
        on = (t > 0).astype(np.float64)
        vt = self.variance_type
        if vt in ("fixed_small", "fixed_small_log"):
            c[:, K.SIGMA] = on * np.sqrt(var)
        elif vt == "fixed_large":
            c[:, K.SIGMA] = on * np.sqrt(cur_beta)
        else:
            c[:, K.SIGMA] = on
            c[:, K.MINLOG] = np.log(var)
            with np.errstate(divide="ignore"):
                c[:, K.MAXLOG] = np.log(cur_beta)
        return c

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        seed: Any = None,
        offset: Optional[int] = None,
        *,
        generator: Any = None,
        noise: Any = None,
        variance_noise: Any = None,
        return_dict: bool = True,
        stream: int = 0,
    ) -> Any:
        """x_{t-1} from x_t and the model output: one fused pass.

        Parameters
        ----------
        model_output : array, the sample's shape (or (batch, 2C, ...) for
            learned variances), same dtype
        timestep : int or int array (batch,)
            Current timestep(s), each among ``self.timesteps``.
        sample : array (batch, ...), float32 or float64
            x_t.
        seed : int, numpy or torch Generator, optional
            Philox seed of the noise (None: fresh entropy; a Generator supplies
            one seed).
        offset : int, optional
            Stream offset of the noise (None: after the previous step's draws).
        noise, variance_noise : array, optional
            Standard normals to use instead of drawing (either name).
        return_dict : bool
            SchedulerOutput (True) or a tuple.

        Returns
        -------
        SchedulerOutput with ``prev_sample`` and ``pred_original_sample``.
        """
        st = self._prepare(model_output, timestep, sample, per_row=self.config.thresholding)
        key = int(st.t[0]) if st.scalar_t and not self.config.thresholding else None
        coef = self._coef_cache.get(key) if key is not None else None
        if coef is None:
            coef = self._coefs(st.t)
            if key is not None:
                self._coef_cache[key] = coef[:1].copy()
                coef = self._coef_cache[key]
        if self.config.thresholding:
            coef = np.array(coef)
            self._threshold(st, coef)
        draw = bool(np.any(coef[:, K.SIGMA] != 0))
        given = noise if noise is not None else variance_noise
        s, off, z = self._noise_args(st, seed, offset, given, generator, stream)
        out = self._pool.take(st.x)
        x0 = self._pool.take(st.x)
        vm = {"learned": K.VAR_GIVEN, "learned_range": K.VAR_LEARNED_RANGE}.get(
            self.variance_type, K.VAR_SIGMA
        )
        K.fused_step(
            st.x,
            coef,
            out,
            model_output=st.m,
            variance=st.v,
            noise=z if draw else None,
            x0_out=x0,
            clip=self._clip_mode(),
            use_x0=self._clip_mode(),
            draw=draw,
            var_mode=vm,
            seed=s,
            offset=off,
            stream=stream,
        )
        return _finish(st, out, x0, return_dict)


class DDIMScheduler(_Scheduler):
    """DDIM (Song, Meng, Ermon 2021), diffusers' ``DDIMScheduler``; ``eta``
    interpolates between the deterministic sampler (0) and DDPM-like
    ancestral sampling (1).

    Parameters
    ----------
    clip_sample : bool
        diffusers' default True.
    set_alpha_to_one : bool
        abar of the step after the last: 1 (True) or abar_0.
    Others as :class:`DDPMScheduler`.
    """

    _default_spacing = "leading"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: Optional[Union[Sequence[float], np.ndarray]] = None,
        clip_sample: bool = True,
        set_alpha_to_one: bool = True,
        steps_offset: int = 0,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        clip_sample_range: float = 1.0,
        sample_max_value: float = 1.0,
        timestep_spacing: str = "leading",
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        super().__init__(
            num_train_timesteps,
            beta_start,
            beta_end,
            beta_schedule,
            trained_betas,
            prediction_type,
            thresholding,
            dynamic_thresholding_ratio,
            sample_max_value,
            clip_sample,
            clip_sample_range,
            timestep_spacing,
            steps_offset,
            rescale_betas_zero_snr,
            set_alpha_to_one=bool(set_alpha_to_one),
        )
        self.final_alpha_cumprod = 1.0 if set_alpha_to_one else float(self.alphas_cumprod[0])

    def _prev_of(self, t: np.ndarray) -> np.ndarray:
        return t - self.config.num_train_timesteps // self.num_inference_steps

    def _coefs(self, t: np.ndarray, eta: float, use_clipped_model_output: bool) -> np.ndarray:
        prev = self._prev_of(t)
        A = self.alphas_cumprod
        a_t = A[t]
        a_prev = np.where(prev >= 0, A[np.maximum(prev, 0)], self.final_alpha_cumprod)
        b_t = 1.0 - a_t
        sa, s1 = np.sqrt(a_t), np.sqrt(b_t)
        px, pm = self._x0_coefs(a_t)
        p = self.config.prediction_type
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == "epsilon":
                ex, em = np.zeros_like(sa), np.ones_like(sa)
            elif p == "sample":
                ex, em = 1.0 / s1, -sa / s1
            else:
                ex, em = s1, sa
        variance = (1.0 - a_prev) / b_t * (1.0 - a_t / a_prev)
        std = eta * np.sqrt(variance)
        direction = np.sqrt(1.0 - a_prev - std**2)
        sp = np.sqrt(a_prev)
        c = K.new_coefs(t.shape[0])
        K.set_x0(c, px, pm)
        if self._clip_mode():
            r = self.config.clip_sample_range
            c[:, K.LO], c[:, K.HI] = -r, r
            if use_clipped_model_output:
                c[:, K.AX] = direction / s1
                c[:, K.C0] = sp - direction * sa / s1
            else:
                c[:, K.AX], c[:, K.AM], c[:, K.C0] = direction * ex, direction * em, sp
        else:
            c[:, K.AX] = sp * px + direction * ex
            c[:, K.AM] = sp * pm + direction * em
        c[:, K.SIGMA] = std
        return c

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        eta: float = 0.0,
        use_clipped_model_output: bool = False,
        seed: Any = None,
        offset: Optional[int] = None,
        *,
        generator: Any = None,
        noise: Any = None,
        variance_noise: Any = None,
        return_dict: bool = True,
        stream: int = 0,
    ) -> Any:
        """x_{t_prev} from x_t (``t_prev = t - T // num_inference_steps``):
        ``sqrt(abar_prev) x0 + sqrt(1 - abar_prev - std^2) eps + std z`` with
        ``std = eta sqrt((1 - abar_prev)/(1 - abar_t) (1 - abar_t/abar_prev))``.

        Parameters as :meth:`DDPMScheduler.step`, plus ``eta`` (>= 0; 0 draws
        no noise and is deterministic) and ``use_clipped_model_output``.
        """
        eta = float(eta)
        if not (eta >= 0 and math.isfinite(eta)):
            raise ValueError(f"'eta': must be a finite number >= 0, got {eta}")
        st = self._prepare(model_output, timestep, sample, per_row=self.config.thresholding)
        key = (
            (int(st.t[0]), eta, bool(use_clipped_model_output))
            if st.scalar_t and not self.config.thresholding
            else None
        )
        coef = self._coef_cache.get(key) if key is not None else None
        if coef is None:
            coef = self._coefs(st.t, eta, use_clipped_model_output)
            if key is not None:
                self._coef_cache[key] = coef[:1].copy()
                coef = self._coef_cache[key]
        if self.config.thresholding:
            coef = np.array(coef)
            self._threshold(st, coef)
        draw = eta > 0
        given = noise if noise is not None else variance_noise
        s, off, z = self._noise_args(st, seed, offset, given, generator, stream) if draw else (0, 0, None)
        out = self._pool.take(st.x)
        x0 = self._pool.take(st.x)
        K.fused_step(
            st.x,
            coef,
            out,
            model_output=st.m,
            noise=z,
            x0_out=x0,
            clip=self._clip_mode(),
            use_x0=self._clip_mode(),
            draw=draw,
            seed=s,
            offset=off,
            stream=stream,
        )
        return _finish(st, out, x0, return_dict)


class DPMSolverMultistepScheduler(_Scheduler):
    """DPM-Solver++(2M) (Lu et al. 2022), diffusers'
    ``DPMSolverMultistepScheduler`` with ``algorithm_type="dpmsolver++"``,
    ``solver_order`` 1 or 2, ``solver_type`` midpoint or heun,
    ``final_sigmas_type="zero"`` (the last step returns the data
    prediction) and ``lower_order_final``.

    The multistep history (the previous data prediction and its timestep) is
    kept per sample: a sample takes a second-order step when its previous
    step was at the preceding timestep of ``self.timesteps``.

    Parameters
    ----------
    solver_order : {1, 2}
    solver_type : {"midpoint", "heun"}
    Others as :class:`DDPMScheduler` (no clipping; thresholding allowed);
    default spacing "linspace". With ``rescale_betas_zero_snr`` the last
    abar is set to 2^-24 as in diffusers.
    """

    _default_spacing = "linspace"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: Optional[Union[Sequence[float], np.ndarray]] = None,
        solver_order: int = 2,
        prediction_type: str = "epsilon",
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        sample_max_value: float = 1.0,
        algorithm_type: str = "dpmsolver++",
        solver_type: str = "midpoint",
        lower_order_final: bool = True,
        final_sigmas_type: str = "zero",
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        if solver_order not in (1, 2):
            raise ValueError(f"'solver_order': heatbath implements orders 1 and 2, got {solver_order!r}")
        if algorithm_type != "dpmsolver++":
            raise ValueError(f"'algorithm_type': only 'dpmsolver++' is implemented, got {algorithm_type!r}")
        if solver_type not in ("midpoint", "heun"):
            raise ValueError(f"'solver_type': expected 'midpoint' or 'heun', got {solver_type!r}")
        if final_sigmas_type != "zero":
            raise ValueError(f"'final_sigmas_type': only 'zero' is implemented, got {final_sigmas_type!r}")
        super().__init__(
            num_train_timesteps,
            beta_start,
            beta_end,
            beta_schedule,
            trained_betas,
            prediction_type,
            thresholding,
            dynamic_thresholding_ratio,
            sample_max_value,
            False,
            1.0,
            timestep_spacing,
            steps_offset,
            rescale_betas_zero_snr,
            solver_order=int(solver_order),
            algorithm_type=algorithm_type,
            solver_type=solver_type,
            lower_order_final=bool(lower_order_final),
            final_sigmas_type=final_sigmas_type,
        )
        self.order = int(solver_order)
        if rescale_betas_zero_snr:
            self.alphas_cumprod[-1] = 2.0**-24
        self._history: Any = None
        self._history_t: Optional[np.ndarray] = None

    def _spaced_timesteps(self, n: int, spacing: str) -> np.ndarray:
        T = self.config.num_train_timesteps
        if spacing == "linspace":
            return np.linspace(0, T - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)
        if spacing == "leading":
            ratio = T // (n + 1)
            return (np.arange(0, n + 1) * ratio).round()[::-1][:-1].copy().astype(
                np.int64
            ) + self.config.steps_offset
        ratio = T / n
        return np.arange(T, 0, -ratio).round().copy().astype(np.int64) - 1

    def _set_timestep_array(self, ts: np.ndarray) -> None:
        super()._set_timestep_array(ts)
        self._history = None
        self._history_t = None

    def _alpha_sigma(self, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        a = self.alphas_cumprod[t]
        return np.sqrt(a), np.sqrt(1.0 - a)

    def _coefs(self, t: np.ndarray, second: np.ndarray) -> np.ndarray:
        pos = self._positions(t)
        last = pos == self.timesteps.size - 1
        a_s, s_s = self._alpha_sigma(t)
        nxt = self.timesteps[np.minimum(pos + 1, self.timesteps.size - 1)]
        a_t, s_t = self._alpha_sigma(nxt)
        a_t = np.where(last, 1.0, a_t)
        s_t = np.where(last, 0.0, s_t)
        px, pm = self._x0_coefs(self.alphas_cumprod[t])
        c = K.new_coefs(t.shape[0])
        K.set_x0(c, px, pm)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam_s = np.log(a_s) - np.log(s_s)
            lam_t = np.log(a_t) - np.log(s_t)
            h = lam_t - lam_s
            em1 = -np.expm1(-h)  # 1 - exp(-h)
            first_c0 = np.where(last, 1.0, a_t * em1)
            first_ax = np.where(last, 0.0, s_t / s_s)
            prev_t = self.timesteps[np.maximum(pos - 1, 0)]
            a_1, s_1 = self._alpha_sigma(prev_t)
            lam_1 = np.log(a_1) - np.log(s_1)
            r0 = (lam_s - lam_1) / h
            if self.config.solver_type == "midpoint":
                c0_2 = a_t * em1 * (1.0 + 0.5 / r0)
                ch_2 = -0.5 * a_t * em1 / r0
            else:
                k = a_t * (np.expm1(-h) / h + 1.0)
                c0_2 = a_t * em1 + k / r0
                ch_2 = -k / r0
        c[:, K.AX] = first_ax
        c[:, K.C0] = np.where(second, c0_2, first_c0)
        c[:, K.CH] = np.where(second, ch_2, 0.0)
        return c

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        seed: Any = None,
        offset: Optional[int] = None,
        *,
        generator: Any = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One DPM-Solver++ step (first order on each sample's first and last
        step, second order otherwise). Deterministic: ``seed``/``offset`` are
        accepted and unused.

        Parameters as :meth:`DDPMScheduler.step`. Returns SchedulerOutput with
        ``prev_sample`` and ``pred_original_sample`` (the data prediction,
        kept as history for the next step).
        """
        st = self._prepare(model_output, timestep, sample, per_row=True)
        pos = self._positions(st.t)
        hist_ok = (
            self._history is not None
            and self._history_t is not None
            and self._history_t.shape[0] == st.rows
            and self._history.shape == st.x.shape
            and _backend.is_cupy(self._history) == _backend.is_cupy(st.x)
            and self._history.dtype == st.x.dtype
        )
        second = np.zeros(st.rows, dtype=bool)
        if hist_ok and self.order == 2:
            expect = self.timesteps[np.maximum(pos - 1, 0)]
            second = (pos > 0) & (self._history_t == expect) & (pos != self.timesteps.size - 1)
        coef = self._coefs(st.t, second)
        if self.config.thresholding:
            self._threshold(st, coef)
        out = self._pool.take(st.x)
        x0 = self._pool.take(st.x)
        K.fused_step(
            st.x,
            coef,
            out,
            model_output=st.m,
            history=self._history if second.any() else None,
            x0_out=x0,
            clip=self.config.thresholding,
            use_x0=True,
        )
        self._history = x0
        self._history_t = st.t.copy()
        return _finish(st, out, x0, return_dict)
