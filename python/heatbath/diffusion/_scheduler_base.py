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
        self._coef_cache.clear()
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
        return bool(self.config.thresholding or self.config.get("clip_sample", False))


def _seed_of(seed: Any) -> int:
    """A 64-bit Philox seed from an int, a numpy Generator, None (fresh
    entropy) or a torch.Generator (diffusers' ``generator=``: one 63-bit
    integer is drawn from it)."""
    if type(seed).__module__.split(".")[0] == "torch" and type(seed).__name__ == "Generator":
        import torch

        return int(torch.randint(0, 2**63 - 1, (1,), generator=seed).item())
    return as_seed(seed)


def finish_step(st: Step, out: Any, x0: Any, return_dict: bool) -> Any:
    prev = K.from_backend(out.reshape(st.shape), st.fw)
    x0r = None if x0 is None else K.from_backend(x0.reshape(st.shape), st.fw)
    res = SchedulerOutput(prev, x0r)
    return res if return_dict else res.to_tuple()
