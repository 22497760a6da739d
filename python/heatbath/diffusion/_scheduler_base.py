"""What the schedulers share: construction of the schedule and the config,
timesteps in diffusers' spacings, ``add_noise`` / ``get_velocity``, and the
plumbing of a step (argument checks, 2-D layouts, noise addresses, dynamic
thresholding) around the fused kernel; ``SchedulerOutput``."""

from __future__ import annotations

import operator
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _backend
from ..random import _as_u64, as_seed
from ..schedules import NoiseSchedule
from . import _kernels as K
from ._config import ConfigMixin
from ._kernels import Step, as_rows, layout
from .gaussian import q_sample

__all__ = ["SchedulerOutput"]

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


def _index(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None


class SchedulerBase(ConfigMixin):
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
        self._register_config(
            dict(
                num_train_timesteps=self.schedule.num_train_timesteps,
                beta_start=beta_start,
                beta_end=beta_end,
                beta_schedule=beta_schedule,
                trained_betas=None
                if trained_betas is None
                else np.asarray(trained_betas, np.float64).tolist(),
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
        device : torch.device or str, optional
            Where a pipeline's tensors live: a torch device makes
            ``timesteps`` a torch tensor there (as diffusers' are); a string
            is read as a torch device by a scheduler made from a diffusers
            config, and ignored otherwise (``timesteps`` is a numpy array).
        timestep_spacing : {"linspace", "leading", "trailing"}, optional
            Overrides the constructor's spacing.
        timesteps : sequence of int, optional
            Custom strictly decreasing timesteps (instead of a count).
        """
        self._timesteps_on(device)
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
        self._index_of = {int(t): i for i, t in enumerate(self._timesteps)}

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
                f"{self._timesteps.tolist()[:8]}{'...' if self._timesteps.size > 8 else ''}"
            ) from None

    def _prev_of(self, t: np.ndarray) -> np.ndarray:
        pos = self._positions(t)
        ext = np.concatenate([self._timesteps, [-1]])
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
        return q_sample(original_samples, timesteps, self.schedule, noise=noise,
                        _names=("original_samples", "timesteps", "noise"))

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
            st = layout(x, td, force_rows=False)
            table = K.device_table(
                schedule_tables(self.schedule), "velocity", st.x, lambda: (velocity_rows(self.schedule), None)
            )
        else:
            st = layout(x, self.schedule.check_timesteps(timesteps, "timesteps"), force_rows=False)
            coef = K.new_coefs(st.rows)
            coef[:, K.AX] = -self.schedule.sqrt_one_minus_alphas_cumprod[st.t]
            coef[:, K.AM] = self.schedule.sqrt_alphas_cumprod[st.t]
        out = K.empty_like(st.x)
        K.fused_step(
            st.x, coef, out, model_output=as_rows(z, st, "noise"), output_name="noise", table=table, tsteps=td
        )
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
        td = None if isinstance(timestep, (int, np.integer)) else K.device_timesteps(timestep)
        if td is not None:
            if not _backend.is_cupy(x):
                raise ValueError("'timestep': on a GPU while 'sample' is not; pass host timesteps")
            st = layout(x, td, force_rows=per_row or split)
        else:
            st = layout(x, self.schedule.check_timesteps(timestep), force_rows=per_row or split)
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
        return bool(self.config.thresholding or self.config.get("clip_sample", False))


    def _x0_only(self, st: Step, coef: Any, kw: Dict[str, Any]) -> Any:
        """The data prediction of a step (its clipping included), 2-D."""
        x0 = K.empty_like(st.x)
        K.fused_step(st.x, coef, K.empty_like(st.x), x0_out=x0, **kw)
        return x0


    def _threshold_any(self, st: Step, coef: Any, table: Any, tsteps: Any) -> Tuple[Any, Any, Any]:
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
            st = layout(x, np.asarray(t, dtype=np.int64), force_rows=False)
            st.m = m.reshape(st.rows, st.inner)
            kw = dict(model_output=st.m, clip=clip, use_x0=clip)
            return self._x0_only(st, coef, kw).reshape(x.shape)

        return SchedulerOutput(out, None, x0)

def _seed_of(seed: Any) -> int:
    """A 64-bit Philox seed from an int, a numpy Generator, None (fresh
    entropy) or a torch.Generator (diffusers' ``generator=``: one 63-bit
    integer is drawn from it)."""
    if type(seed).__module__.split(".")[0] == "torch" and type(seed).__name__ == "Generator":
        import torch

        return int(torch.randint(0, 2**63 - 1, (1,), generator=seed).item())
    return as_seed(seed)


def finish_step(st: Step, out: Any, x0: Any, return_dict: bool, x0_fn: Any = None) -> Any:
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


def _threshold_rows(st: Step, base: Any, ratio: float, smax: float, m: Any) -> Any:
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
