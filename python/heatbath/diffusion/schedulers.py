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
from ..random import _as_u64, as_seed  # noqa: F401
from ..schedules import NoiseSchedule
from . import _kernels as K

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
    ``out["prev_sample"]``, ``out.to_tuple()``).

    The data prediction of DDPM and DDIM steps is computed when it is first
    read (one more pass over the step's sample and model output), so that a
    loop that only takes ``prev_sample`` moves no bytes for it. Read it
    before changing that sample or model output in place.
    """

    __slots__ = ("prev_sample", "_x0", "_x0_fn")

    def __init__(self, prev_sample: Any, pred_original_sample: Any = None, x0_fn: Any = None) -> None:
        self.prev_sample = prev_sample
        self._x0 = pred_original_sample
        self._x0_fn = x0_fn

    @property
    def pred_original_sample(self) -> Any:
        if self._x0 is None and self._x0_fn is not None:
            self._x0 = self._x0_fn()
            self._x0_fn = None
        return self._x0

    @pred_original_sample.setter
    def pred_original_sample(self, value: Any) -> None:
        self._x0, self._x0_fn = value, None

    def to_tuple(self) -> tuple:
        x0 = self.pred_original_sample
        if x0 is None:
            return (self.prev_sample,)
        return (self.prev_sample, x0)

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


class _Step:
    """One step's arrays as 2-D views and its per-sample timesteps."""

    __slots__ = ("x", "m", "v", "fw", "t", "tdev", "rows", "inner", "shape", "scalar_t", "xp")


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
        self._dev_tables: Dict[Any, Any] = {}
        self._gpu_rows: Dict[Any, Any] = {}
        self._step_index = 0
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
        self._step_index = 0
        self._coef_cache.clear()
        self._dev_tables.clear()
        self._gpu_rows.clear()
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
        from .gaussian import q_sample

        return q_sample(original_samples, timesteps, self.schedule, noise=noise)

    def get_velocity(self, sample: Any, noise: Any, timesteps: Any) -> Any:
        """The v-prediction target ``sqrt(abar_t) noise - sqrt(1 - abar_t) x0``
        (``sample`` is x0, as in diffusers)."""
        from .gaussian import schedule_tables, velocity_rows

        x, fw = K.to_backend(sample, "sample")
        z, _ = K.to_backend(noise, "noise")
        td = None if isinstance(timesteps, (int, np.integer)) else K.device_timesteps(timesteps, "timesteps")
        coef = table = None
        if td is not None:
            if not _backend.is_cupy(x):
                raise ValueError("'timesteps': on a GPU while 'sample' is not; pass host timesteps")
            st = _layout(x, td, force_rows=False)
            table = K.device_table(
                schedule_tables(self.schedule), "velocity", st.x, lambda: (velocity_rows(self.schedule), None)
            )
        else:
            st = _layout(x, self.schedule.check_timesteps(timesteps, "timesteps"), force_rows=False)
            coef = K.new_coefs(st.rows)
            coef[:, K.AX] = -self.schedule.sqrt_one_minus_alphas_cumprod[st.t]
            coef[:, K.AM] = self.schedule.sqrt_alphas_cumprod[st.t]
        out = K.empty_like(st.x)
        K.fused_step(
            st.x, coef, out, model_output=_as_rows(z, st, "noise"), output_name="noise", table=table, tsteps=td
        )
        return K.from_backend(out.reshape(st.shape), fw)

    # ---- step plumbing ------------------------------------------------------

    def _split(self) -> bool:
        return False

    def _prepare(self, model_output: Any, timestep: Any, sample: Any, per_row: bool) -> _Step:
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
        td = None if isinstance(timestep, (int, np.integer)) else K.device_timesteps(timestep)
        if td is not None:
            if not _backend.is_cupy(x):
                raise ValueError("'timestep': on a GPU while 'sample' is not; pass host timesteps")
            st = _layout(x, td, force_rows=per_row or split)
        else:
            st = _layout(x, self.schedule.check_timesteps(timestep), force_rows=per_row or split)
        mm = m if m.flags.c_contiguous else _backend.array_namespace(m).ascontiguousarray(m)
        if split:
            m2 = mm.reshape(st.rows, 2 * st.inner)
            st.m, st.v = m2[:, : st.inner], m2[:, st.inner :]
        else:
            st.m, st.v = mm.reshape(st.rows, st.inner), None
        st.fw = fw
        return st

    def _noise_args(
        self, st: _Step, seed: Any, offset: Any, noise: Any, generator: Any, stream: int
    ) -> Tuple[int, int, Any]:
        z = None
        if noise is not None:
            zz, _ = K.to_backend(noise, "noise")
            z = _as_rows(zz, st, "noise")
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

    def _threshold(self, st: _Step, coef: np.ndarray) -> None:
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

    def _gpu_fast(
        self,
        m: Any,
        t: int,
        x: Any,
        key: Any,
        coefs: Any,
        draw_eta: Optional[bool],
        seed: Any,
        offset: Any,
        generator: Any,
        stream: int,
        clip: bool,
    ) -> Optional[SchedulerOutput]:
        """The step a GPU sampling loop takes (cupy sample and model output of
        one shape and dtype, C-contiguous, on one device; a Python int
        timestep; no thresholding or learned variance) with as little Python
        as possible: the coefficient row in the state's precision is cached
        per timestep, pointers are read without building views, and nothing
        waits for the device. None when the general path must run."""
        if not (_backend.is_cupy(x) and type(m) is type(x)):
            return None
        dt = x.dtype
        if (
            m.dtype != dt
            or dt.char not in "fd"
            or m.shape != x.shape
            or not x.flags.c_contiguous
            or not m.flags.c_contiguous
            or x.data.device_id != m.data.device_id
            or x.ndim == 0
        ):
            return None
        self._require_timesteps()
        ck = (key, dt.char)
        ent = self._gpu_rows.get(ck)
        if ent is None:
            if not isinstance(t, int) or not 0 <= t < self.config.num_train_timesteps:
                return None  # the general path raises the error
            coef = self._coef_cache.get(key)
            if coef is None:
                coef = self._coef_cache[key] = coefs()[:1].copy()
            draw = bool(coef[0, K.SIGMA] != 0) if draw_eta is None else draw_eta
            ent = self._gpu_rows[ck] = (K.gpu_rows(coef, dt)[0], draw, coef)
        row, draw, coef = ent
        n = int(x.size)
        s = off = 0
        if draw:
            if seed is not None and generator is not None:
                raise ValueError("'generator': give either seed or generator, not both")
            s = _seed_of(generator if seed is None else seed)
            off = self._noise_offset if offset is None else _as_u64(offset, "offset")
            if off + n > (1 << 64):
                raise ValueError(f"'offset': offset + size ({off} + {n}) runs past the end of the stream")
            self._noise_offset = off + n
        out = self._pool.take(x)
        K.gpu_step_flat(x, m, out, row, n, clip, draw, s, off, stream)

        def x0() -> Any:
            st = _layout(x, np.asarray(t, dtype=np.int64), force_rows=False)
            st.m = m.reshape(st.rows, st.inner)
            kw = dict(model_output=st.m, clip=clip, use_x0=clip)
            return self._x0_only(st, coef, kw).reshape(x.shape)

        return SchedulerOutput(out, None, x0)

    def _threshold_any(self, st: _Step, coef: Any, table: Any, tsteps: Any) -> Tuple[Any, Any, Any]:
        """Dynamic thresholding: (coef, table, tsteps) with each sample's clip
        range; on the GPU as device rows, with nothing read back."""
        if not _backend.is_cupy(st.x):
            coef = np.array(coef)
            self._threshold(st, coef)
            return coef, None, None
        cp = st.xp
        with st.x.device:
            if table is not None:
                t = cp.clip(tsteps.astype(cp.int64), 0, table.shape[0] - 1)
                base = cp.take(table, t, axis=0)
                ok = ((tsteps >= 0) & (tsteps < table.shape[0])).astype(base.dtype)
                base[..., 14] *= ok
            else:
                base = cp.asarray(K.gpu_rows(coef, st.x.dtype))
            rows = _threshold_rows(
                st, base, self.config.dynamic_thresholding_ratio, self.config.sample_max_value, st.m
            )
        return None, rows, None

    def _x0_only(self, st: _Step, coef: Any, kw: Dict[str, Any]) -> Any:
        """The data prediction of a step (its clipping included), 2-D."""
        x0 = K.empty_like(st.x)
        K.fused_step(st.x, coef, K.empty_like(st.x), x0_out=x0, **kw)
        return x0


def _seed_of(seed: Any) -> int:
    """A 64-bit Philox seed from an int, a numpy Generator, None (fresh
    entropy) or a torch.Generator (diffusers' ``generator=``: one 63-bit
    integer is drawn from it)."""
    if type(seed).__module__.split(".")[0] == "torch" and type(seed).__name__ == "Generator":
        import torch

        return int(torch.randint(0, 2**63 - 1, (1,), generator=seed).item())
    return as_seed(seed)


def _layout(x: Any, t: Any, force_rows: bool) -> _Step:
    """2-D view of ``x``: one row per sample for per-sample timesteps (or when
    asked), else one row for the whole array. ``t`` is a host int64 array
    (checked) or a device int array (checked on the device by the kernel)."""
    st = _Step()
    st.shape = tuple(x.shape)
    st.xp = _backend.array_namespace(x)
    dev = not isinstance(t, np.ndarray)
    st.tdev = t if dev else None
    if t.ndim == 0:
        st.scalar_t = True
        if force_rows:
            if x.ndim == 0 or x.shape[0] == 0:
                raise ValueError(f"'sample': expected a batch axis, got shape {tuple(x.shape)}")
            st.rows = int(x.shape[0])
            st.t = None if dev else np.full(st.rows, int(t), dtype=np.int64)
        else:
            st.rows = 1
            st.t = None if dev else t.reshape(1)
    elif t.ndim == 1:
        if x.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(
                f"'timestep': {t.shape[0]} per-sample timesteps do not match the batch of 'sample' "
                f"(shape {tuple(x.shape)})"
            )
        st.scalar_t = False
        st.rows = int(t.shape[0])
        st.t = None if dev else t
    else:
        raise ValueError(f"'timestep': expected an int or a 1-D array (batch,), got shape {tuple(t.shape)}")
    size = int(np.prod(st.shape)) if st.shape else 1
    st.inner = size // st.rows if st.rows else 0
    xc = x if x.flags.c_contiguous else st.xp.ascontiguousarray(x)
    st.x = xc.reshape(st.rows, st.inner)
    return st


def _as_rows(a: Any, st: _Step, name: str) -> Any:
    if tuple(a.shape) != st.shape:
        raise ValueError(f"'{name}': shape {tuple(a.shape)} does not match 'sample' shape {st.shape}")
    if a.dtype != st.x.dtype:
        raise TypeError(f"'{name}': dtype {a.dtype} does not match 'sample' dtype {st.x.dtype}")
    if _backend.is_cupy(a) != _backend.is_cupy(st.x):
        raise ValueError(f"'{name}': must be on the same device as 'sample'")
    ac = a if a.flags.c_contiguous else st.xp.ascontiguousarray(a)
    return ac.reshape(st.rows, st.inner)


def _finish(st: _Step, out: Any, x0: Any, return_dict: bool, x0_fn: Any = None) -> Any:
    """The step's output in the sample's framework; ``x0_fn()`` (optional)
    computes the data prediction (2-D) when it is first read."""
    prev = K.from_backend(out.reshape(st.shape), st.fw)
    x0r = None if x0 is None else K.from_backend(x0.reshape(st.shape), st.fw)
    fn = None
    if x0_fn is not None and x0 is None:
        def fn() -> Any:
            return K.from_backend(x0_fn().reshape(st.shape), st.fw)

    res = SchedulerOutput(prev, x0r, fn)
    return res if return_dict else res.to_tuple()


def _table_mask(t_all: np.ndarray, T: int) -> np.ndarray:
    valid = np.zeros(T, dtype=bool)
    valid[t_all] = True
    return valid


def _threshold_rows(st: _Step, base: Any, ratio: float, smax: float, m: Any) -> Any:
    """Dynamic thresholding on the GPU without reading anything back: device
    rows (rows, GPU_ROW) from ``base`` (device rows, one per sample or one for
    all) with the clip range and scale of each sample's quantile."""
    cp = st.xp
    rows = cp.array(cp.broadcast_to(base, (st.rows, base.shape[-1])))
    # x0 = ps (a + r b) of the unclipped data prediction, as the kernel forms it
    tmp = cp.empty_like(st.x)
    x0 = cp.empty_like(st.x)
    rr = cp.array(rows)
    rr[:, 0:4] = 0.0
    rr[:, 7], rr[:, 8], rr[:, 9] = -np.inf, np.inf, 1.0
    K.fused_step(st.x, None, tmp, model_output=m, x0_out=x0, table=rr)
    q = cp.quantile(cp.abs(x0), ratio, axis=1)
    s = cp.clip(q.astype(cp.float64), 1.0, smax)
    rows[:, 7] = -s
    rows[:, 8] = s
    rows[:, 9] = 1.0 / s
    return rows



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
        if (
            type(timestep) is int
            and return_dict
            and noise is None
            and variance_noise is None
            and not self.config.thresholding
            and not self._split()
        ):
            r = self._gpu_fast(
                model_output,
                timestep,
                sample,
                timestep,
                lambda: self._coefs(np.array([timestep], dtype=np.int64)),
                None,
                seed,
                offset,
                generator,
                stream,
                self._clip_mode(),
            )
            if r is not None:
                return r
        st = self._prepare(model_output, timestep, sample, per_row=self.config.thresholding)
        vm = {"learned": K.VAR_GIVEN, "learned_range": K.VAR_LEARNED_RANGE}.get(
            self.variance_type, K.VAR_SIGMA
        )
        given = noise if noise is not None else variance_noise
        coef, table, tsteps = None, None, None
        if st.tdev is not None:
            table = K.device_table(self._dev_tables, "ddpm", st.x, self._table)
            tsteps = st.tdev
            draw = True
        else:
            key = int(st.t[0]) if st.scalar_t and not self.config.thresholding else None
            coef = self._coef_cache.get(key) if key is not None else None
            if coef is None:
                coef = self._coefs(st.t)
                if key is not None:
                    self._coef_cache[key] = coef[:1].copy()
                    coef = self._coef_cache[key]
            draw = bool(np.any(coef[:, K.SIGMA] != 0))
        if self.config.thresholding:
            coef, table, tsteps = self._threshold_any(st, coef, table, tsteps)
        s, off, z = self._noise_args(st, seed, offset, given, generator, stream)
        out = self._pool.take(st.x)
        kw = dict(
            model_output=st.m,
            variance=st.v,
            clip=self._clip_mode(),
            use_x0=self._clip_mode(),
            var_mode=vm,
            table=table,
            tsteps=tsteps,
        )
        x0 = None if return_dict else self._pool.take(st.x)
        K.fused_step(
            st.x, coef, out, noise=z if draw else None, x0_out=x0, draw=draw, seed=s, offset=off, stream=stream,
            **kw,
        )
        return _finish(st, out, x0, return_dict, lambda: self._x0_only(st, coef, kw))

    def _table(self) -> Tuple[np.ndarray, np.ndarray]:
        """Rows of every train timestep (valid: those in ``self.timesteps``)."""
        T = self.config.num_train_timesteps
        rows = K.new_coefs(T)
        rows[self.timesteps] = self._coefs(self.timesteps)
        return rows, _table_mask(self.timesteps, T)


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
        uc = bool(use_clipped_model_output)
        if (
            type(timestep) is int
            and return_dict
            and noise is None
            and variance_noise is None
            and not self.config.thresholding
        ):
            r = self._gpu_fast(
                model_output,
                timestep,
                sample,
                (timestep, eta, uc),
                lambda: self._coefs(np.array([timestep], dtype=np.int64), eta, uc),
                eta > 0,
                seed,
                offset,
                generator,
                stream,
                self._clip_mode(),
            )
            if r is not None:
                return r
        st = self._prepare(model_output, timestep, sample, per_row=self.config.thresholding)
        coef, table, tsteps = None, None, None
        if st.tdev is not None:
            T = self.config.num_train_timesteps
            table = K.device_table(
                self._dev_tables, ("ddim", eta, uc), st.x, lambda: (self._coefs(np.arange(T), eta, uc), None)
            )
            tsteps = st.tdev
        else:
            key = (int(st.t[0]), eta, uc) if st.scalar_t and not self.config.thresholding else None
            coef = self._coef_cache.get(key) if key is not None else None
            if coef is None:
                coef = self._coefs(st.t, eta, uc)
                if key is not None:
                    self._coef_cache[key] = coef[:1].copy()
                    coef = self._coef_cache[key]
        if self.config.thresholding:
            coef, table, tsteps = self._threshold_any(st, coef, table, tsteps)
        draw = eta > 0
        given = noise if noise is not None else variance_noise
        s, off, z = self._noise_args(st, seed, offset, given, generator, stream) if draw else (0, 0, None)
        out = self._pool.take(st.x)
        kw = dict(
            model_output=st.m, clip=self._clip_mode(), use_x0=self._clip_mode(), table=table, tsteps=tsteps
        )
        x0 = None if return_dict else self._pool.take(st.x)
        K.fused_step(st.x, coef, out, noise=z, x0_out=x0, draw=draw, seed=s, offset=off, stream=stream, **kw)
        return _finish(st, out, x0, return_dict, lambda: self._x0_only(st, coef, kw))


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
        t_expect = -1
        if st.tdev is not None:
            # device timesteps are not read: the step is the scheduler's next
            # one, and the kernel checks that every sample's timestep is it
            if self._step_index >= self.timesteps.size:
                raise ValueError(
                    "'timestep': the scheduler has taken all its steps; call set_timesteps to start again"
                )
            t_expect = int(self.timesteps[self._step_index])
            st.t = np.full(st.rows, t_expect, dtype=np.int64)
        pos = self._positions(st.t)
        self._step_index = int(pos[0]) + 1
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
        out = self._pool.take(st.x)
        x0 = self._pool.take(st.x)
        table = None
        if self.config.thresholding:
            coef, table, _ = self._threshold_any(st, coef, None, None)
        K.fused_step(
            st.x,
            coef,
            out,
            model_output=st.m,
            history=self._history if second.any() else None,
            x0_out=x0,
            clip=self.config.thresholding,
            use_x0=True,
            table=table,
            tsteps=st.tdev,
            t_expect=t_expect,
        )
        self._history = x0
        self._history_t = st.t.copy()
        return _finish(st, out, x0, return_dict)
