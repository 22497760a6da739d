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
* all tables are float64 (diffusers keeps float32 betas), except that
  ``DDIMScheduler`` steps torch tensors in diffusers' own float32 operations
  and tables (``torch_exact``), so pipelines reproduce diffusers' images;
* stepping before ``set_timesteps`` raises, and so do NaN or infinite model
  outputs, out-of-range timesteps and shape mismatches, each naming the
  argument;
* numpy, cupy, torch and jax arrays are accepted (torch/jax by DLPack, no
  copy) and results come back in the sample's framework.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _backend
from . import _kernels as K
from . import _torch_ddim
from ._scheduler_base import SchedulerBase, SchedulerOutput, _table_mask, finish_step

__all__ = [
    "SchedulerOutput",
    "DDPMScheduler",
    "DDIMScheduler",
    "DPMSolverMultistepScheduler",
]


class DDPMScheduler(SchedulerBase):
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
        return finish_step(st, out, x0, return_dict, lambda: self._x0_only(st, coef, kw))

    def _table(self) -> Tuple[np.ndarray, np.ndarray]:
        """Rows of every train timestep (valid: those in ``self.timesteps``)."""
        T = self.config.num_train_timesteps
        rows = K.new_coefs(T)
        rows[self._timesteps] = self._coefs(self._timesteps)
        return rows, _table_mask(self._timesteps, T)


class DDIMScheduler(SchedulerBase):
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

    Attributes
    ----------
    torch_exact : bool
        True (default): torch tensors are stepped with torch operations in
        diffusers' float32 order on diffusers' float32 tables, so a pipeline
        gives diffusers' images to the bit (eta = 0). False: the fused kernel
        (float64 tables, one rounding per output) serves torch tensors too.
        Thresholding and per-sample timesteps always take the fused kernel.
    check_finite : bool
        True (default): the torch path checks ``sample`` and ``model_output``
        for NaN and infinity (a pass over each; the fused kernel counts them
        in its own pass at no cost). False skips that check.
    """

    _default_spacing = "leading"
    torch_exact = True
    check_finite = True

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
        if self.torch_exact and _torch_ddim.is_torch(sample) and not self.config.thresholding:
            given = noise if noise is not None else variance_noise
            r = _torch_ddim.step(
                self, model_output, timestep, sample, eta, uc, seed, offset, generator, given, stream
            )
            if r is not None:
                return r if return_dict else r.to_tuple()
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
        return finish_step(st, out, x0, return_dict, lambda: self._x0_only(st, coef, kw))


class DPMSolverMultistepScheduler(SchedulerBase):
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
    _diffusers_fixed = {
        **{
            k: ((lambda v: not v), "False")
            for k in (
                "euler_at_final",
                "use_karras_sigmas",
                "use_exponential_sigmas",
                "use_beta_sigmas",
                "use_lu_lambdas",
                "use_flow_sigmas",
                "use_dynamic_shifting",
            )
        },
        "lambda_min_clipped": ((lambda v: v == -math.inf), "-inf (no clipping)"),
        "variance_type": (
            (lambda v: v not in ("learned", "learned_range")),
            "a fixed variance (not learned)",
        ),
        "flow_shift": ((lambda v: True), "any value (unused without flow sigmas)"),
        "time_shift_type": ((lambda v: True), "any value (unused without dynamic shifting)"),
    }

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
        last = pos == self._timesteps.size - 1
        a_s, s_s = self._alpha_sigma(t)
        nxt = self._timesteps[np.minimum(pos + 1, self._timesteps.size - 1)]
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
            prev_t = self._timesteps[np.maximum(pos - 1, 0)]
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
        kept as history for the next step); with ``return_dict=False`` the
        tuple ``(prev_sample,)``, as diffusers'.
        """
        st = self._prepare(model_output, timestep, sample, per_row=True)
        t_expect = -1
        if st.tdev is not None:
            # device timesteps are not read: the step is the scheduler's next
            # one, and the kernel checks that every sample's timestep is it
            if self._step_index >= self._timesteps.size:
                raise ValueError(
                    "'timestep': the scheduler has taken all its steps; call set_timesteps to start again"
                )
            t_expect = int(self._timesteps[self._step_index])
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
            expect = self._timesteps[np.maximum(pos - 1, 0)]
            second = (pos > 0) & (self._history_t == expect) & (pos != self._timesteps.size - 1)
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
        res = finish_step(st, out, x0, True)
        return res if return_dict else (res.prev_sample,)
