"""Every fused step against a float64 numpy reference written the way
diffusers (and the papers) write the formula, one sample at a time, with
per-sample timesteps: 1e-12 (float64) and 1e-6 relative (float32, relative to
the largest reference value)."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
from heatbath import random as hr
from heatbath.diffusion import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    posterior_mean_variance,
    q_sample,
    sohl_dickstein_step,
)
from heatbath.schedules import NoiseSchedule

SHAPE = (5, 3, 7, 9)  # 189 elements per sample: partial Philox tiles at sample edges
TOL = {np.float64: 1e-12, np.float32: 1e-6}


def check(got, ref, dtype):
    got = np.asarray(got, dtype=np.float64)
    scale = max(np.abs(ref).max(), 1e-300)
    err = np.abs(got - ref).max() / scale
    assert err <= TOL[dtype], f"max error {err:.3g} relative to max |ref| {scale:.3g}"


def rand(shape, seed, dtype, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# ---- references (diffusers' code, in numpy float64, one sample at a time) ----


def ref_threshold(x0, ratio, max_value):
    flat = x0.reshape(-1)
    s = np.quantile(np.abs(flat), ratio)
    s = min(max(s, 1.0), max_value)
    return np.clip(x0, -s, s) / s


def ref_x0(pred, abar, x, m):
    if pred == "epsilon":
        return (x - (1 - abar) ** 0.5 * m) / abar**0.5
    if pred == "sample":
        return m
    return abar**0.5 * x - (1 - abar) ** 0.5 * m


def ref_ddpm(sch, cfg, m_all, t_all, x_all, z_all):
    A = sch.alphas_cumprod
    ts = list(sch.timesteps)
    prevs, x0s = [], []
    C = x_all.shape[1]
    for b, t in enumerate(t_all):
        t = int(t)
        i = ts.index(t)
        prev_t = ts[i + 1] if i + 1 < len(ts) else -1
        m, x, z = m_all[b].astype(np.float64), x_all[b].astype(np.float64), z_all[b].astype(np.float64)
        pv = None
        if cfg["variance_type"] in ("learned", "learned_range"):
            m, pv = m[:C], m[C:]
        a_t = A[t]
        a_p = A[prev_t] if prev_t >= 0 else 1.0
        b_t, b_p = 1 - a_t, 1 - a_p
        cur_a = a_t / a_p
        cur_b = 1 - cur_a
        x0 = ref_x0(cfg["prediction_type"], a_t, x, m)
        if cfg["thresholding"]:
            x0 = ref_threshold(x0, 0.995, cfg["sample_max_value"])
        elif cfg["clip_sample"]:
            x0 = np.clip(x0, -cfg["clip_sample_range"], cfg["clip_sample_range"])
        mean = (a_p**0.5 * cur_b) / b_t * x0 + cur_a**0.5 * b_p / b_t * x
        var = max((1 - a_p) / (1 - a_t) * cur_b, 1e-20)
        if t > 0:
            vt = cfg["variance_type"]
            if vt == "fixed_small":
                noise = var**0.5 * z
            elif vt == "fixed_large":
                noise = cur_b**0.5 * z
            elif vt == "learned":
                noise = pv**0.5 * z
            else:  # learned_range
                frac = (pv + 1) / 2
                logv = frac * np.log(cur_b) + (1 - frac) * np.log(var)
                noise = np.exp(0.5 * logv) * z
            mean = mean + noise
        prevs.append(mean)
        x0s.append(x0)
    return np.stack(prevs), np.stack(x0s)


def ref_ddim(sch, cfg, m_all, t_all, x_all, z_all, eta, use_clipped):
    A = sch.alphas_cumprod
    T, n = sch.config.num_train_timesteps, sch.num_inference_steps
    final = 1.0 if cfg.get("set_alpha_to_one", True) else A[0]
    prevs, x0s = [], []
    for b, t in enumerate(t_all):
        t = int(t)
        pt = t - T // n
        m, x, z = m_all[b].astype(np.float64), x_all[b].astype(np.float64), z_all[b].astype(np.float64)
        a_t = A[t]
        a_p = A[pt] if pt >= 0 else final
        b_t = 1 - a_t
        p = cfg["prediction_type"]
        if p == "epsilon":
            x0 = (x - b_t**0.5 * m) / a_t**0.5
            eps = m
        elif p == "sample":
            x0 = m
            eps = (x - a_t**0.5 * x0) / b_t**0.5
        else:
            x0 = a_t**0.5 * x - b_t**0.5 * m
            eps = a_t**0.5 * m + b_t**0.5 * x
        if cfg["thresholding"]:
            x0 = ref_threshold(x0, 0.995, cfg["sample_max_value"])
        elif cfg["clip_sample"]:
            x0 = np.clip(x0, -1.0, 1.0)
        variance = (1 - a_p) / b_t * (1 - a_t / a_p)
        std = eta * variance**0.5
        if use_clipped:
            eps = (x - a_t**0.5 * x0) / b_t**0.5
        prev = a_p**0.5 * x0 + (1 - a_p - std**2) ** 0.5 * eps
        if eta > 0:
            prev = prev + std * z
        prevs.append(prev)
        x0s.append(x0)
    return np.stack(prevs), np.stack(x0s)


def ref_dpm_run(A, timesteps, model, x, pred="epsilon", solver_type="midpoint"):
    """diffusers' DPM-Solver++ (order 2, lower_order_final, final sigma 0) for
    one sample: returns the list of samples after each step."""
    sig = lambda t: ((1 - A[t]) / A[t]) ** 0.5 if t >= 0 else 0.0  # noqa: E731
    sigmas = [sig(int(t)) for t in timesteps] + [0.0]

    def alpha_sigma(s):
        a = 1 / (s**2 + 1) ** 0.5
        return a, s * a

    outs, hist, lam_hist = [], None, None
    for i, t in enumerate(timesteps):
        m = model(x, int(t), i).astype(np.float64)
        a_s, s_s = alpha_sigma(sigmas[i])
        if pred == "epsilon":
            x0 = (x - s_s * m) / a_s
        elif pred == "sample":
            x0 = m
        else:
            x0 = a_s * x - s_s * m
        a_t, s_t = alpha_sigma(sigmas[i + 1])
        lam_s = np.log(a_s) - np.log(s_s)
        last = i == len(timesteps) - 1
        if last:
            xn = x0  # sigma_t = 0: h = inf, exp(-h) = 0
        else:
            lam_t = np.log(a_t) - np.log(s_t)
            h = lam_t - lam_s
            if hist is None:
                xn = (s_t / s_s) * x - a_t * (np.exp(-h) - 1.0) * x0
            else:
                h0 = lam_s - lam_hist
                r0 = h0 / h
                D0, D1 = x0, (1.0 / r0) * (x0 - hist)
                if solver_type == "midpoint":
                    xn = (s_t / s_s) * x - a_t * (np.exp(-h) - 1.0) * D0 - 0.5 * a_t * (np.exp(-h) - 1.0) * D1
                else:
                    xn = (
                        (s_t / s_s) * x
                        - a_t * (np.exp(-h) - 1.0) * D0
                        + a_t * ((np.exp(-h) - 1.0) / h + 1.0) * D1
                    )
        hist, lam_hist = x0, lam_s
        x = xn
        outs.append(x)
    return outs


# ---- forward process, posterior, Sohl-Dickstein ---------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_q_sample_and_add_noise(dtype):
    s = NoiseSchedule("squaredcos_cap_v2", 1000)
    x0 = rand(SHAPE, 1, dtype)
    t = np.array([0, 999, 500, 17, 250])
    xt, z = q_sample(x0, t, s, seed=11, offset=3, return_noise=True)
    assert xt.dtype == dtype and z.dtype == dtype
    np.testing.assert_array_equal(z, hr.normal(SHAPE, 11, 3, dtype=np.dtype(dtype).name))
    sa = np.sqrt(s.alphas_cumprod[t])[:, None, None, None]
    s1 = np.sqrt(1 - s.alphas_cumprod[t])[:, None, None, None]
    check(xt, sa * x0.astype(np.float64) + s1 * z.astype(np.float64), dtype)
    sch = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    check(sch.add_noise(x0, z, t), sa * x0 + s1 * z.astype(np.float64), dtype)
    # scalar timestep
    check(
        q_sample(x0, 300, s, noise=z),
        np.sqrt(s.alphas_cumprod[300]) * x0 + np.sqrt(1 - s.alphas_cumprod[300]) * z,
        dtype,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_posterior_and_velocity(dtype):
    s = NoiseSchedule("linear", 1000)
    x0, xt = rand(SHAPE, 2, dtype), rand(SHAPE, 3, dtype)
    t = np.array([1, 999, 3, 400, 0])
    mean, var, logv = posterior_mean_variance(x0, xt, t, s)
    A = s.alphas_cumprod
    Ap = np.concatenate([[1.0], A[:-1]])[t]
    b = s.betas[t]
    c1 = (b * np.sqrt(Ap) / (1 - A[t]))[:, None, None, None]
    c2 = ((1 - Ap) * np.sqrt(1 - b) / (1 - A[t]))[:, None, None, None]
    check(mean, c1 * x0 + c2 * xt, dtype)
    np.testing.assert_allclose(var.reshape(-1), b * (1 - Ap) / (1 - A[t]), rtol=1e-12)
    assert var.shape == (5, 1, 1, 1) and logv.shape == (5, 1, 1, 1)
    z = rand(SHAPE, 4, dtype)
    v = DDPMScheduler().get_velocity(x0, z, t)
    check(v, np.sqrt(A[t])[:, None, None, None] * z - np.sqrt(1 - A[t])[:, None, None, None] * x0, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sohl_dickstein_step(dtype):
    mu = rand(SHAPE, 5, dtype)
    var = np.abs(rand(SHAPE, 6, dtype)) + dtype(0.01)
    out = sohl_dickstein_step(mu, var, seed=9, offset=100)
    z = hr.normal(SHAPE, 9, 100, dtype=np.dtype(dtype).name).astype(np.float64)
    check(out, mu + np.sqrt(var.astype(np.float64)) * z, dtype)


# ---- DDPM ----------------------------------------------------------------------

DDPM_CASES = [
    dict(prediction_type="epsilon", variance_type="fixed_small", clip_sample=True),
    dict(prediction_type="epsilon", variance_type="fixed_small", clip_sample=False),
    dict(prediction_type="sample", variance_type="fixed_large", clip_sample=False),
    dict(
        prediction_type="v_prediction", variance_type="fixed_small", clip_sample=True, clip_sample_range=1.5
    ),
    dict(prediction_type="epsilon", variance_type="learned_range", clip_sample=True),
    dict(prediction_type="epsilon", variance_type="learned", clip_sample=False),
    dict(prediction_type="epsilon", variance_type="fixed_small", thresholding=True, sample_max_value=3.0),
    dict(
        prediction_type="v_prediction", variance_type="fixed_small", thresholding=True, sample_max_value=2.0
    ),
]


def _cfg(case):
    cfg = dict(
        prediction_type="epsilon",
        variance_type="fixed_small",
        clip_sample=True,
        clip_sample_range=1.0,
        thresholding=False,
        sample_max_value=1.0,
    )
    cfg.update(case)
    return cfg


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", DDPM_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_ddpm_step(case, dtype):
    cfg = _cfg(case)
    sch = DDPMScheduler(beta_schedule="linear", **case)
    sch.set_timesteps(50)
    x = rand(SHAPE, 10, dtype)
    C = SHAPE[1] * (2 if cfg["variance_type"] in ("learned", "learned_range") else 1)
    m = rand((SHAPE[0], C) + SHAPE[2:], 11, dtype, scale=0.5)
    if cfg["variance_type"] == "learned":
        m[:, SHAPE[1] :] = np.abs(m[:, SHAPE[1] :]) * dtype(0.01)
    if cfg["variance_type"] == "learned_range":
        m[:, SHAPE[1] :] = np.tanh(m[:, SHAPE[1] :])
    ts = sch.timesteps
    t = np.array([ts[0], ts[-1], ts[10], ts[25], ts[48]])
    z = hr.normal(SHAPE, 21, 7, dtype=np.dtype(dtype).name)
    out = sch.step(m, t, x, seed=21, offset=7)
    rp, rx0 = ref_ddpm(sch, cfg, m, t, x, z)
    check(out.prev_sample, rp, dtype)
    check(out.pred_original_sample, rx0, dtype)
    # given noise = drawn noise, to the bit
    out2 = sch.step(m, t, x, noise=z)
    np.testing.assert_array_equal(out2.prev_sample, out.prev_sample)
    # a scalar timestep is the same as that timestep for every sample
    o3 = sch.step(m, int(ts[10]), x, noise=z)
    r3, _ = ref_ddpm(sch, cfg, m, np.full(SHAPE[0], ts[10]), x, z)
    check(o3.prev_sample, r3, dtype)


def test_ddpm_spacings_match_diffusers_formulas():
    s = DDPMScheduler()
    s.set_timesteps(7, timestep_spacing="linspace")
    np.testing.assert_array_equal(s.timesteps, np.linspace(0, 999, 7).round()[::-1].astype(np.int64))
    s.set_timesteps(7, timestep_spacing="leading")
    np.testing.assert_array_equal(s.timesteps, (np.arange(7) * (1000 // 7))[::-1])
    s.set_timesteps(7, timestep_spacing="trailing")
    np.testing.assert_array_equal(s.timesteps, np.round(np.arange(1000, 0, -1000 / 7)).astype(np.int64) - 1)
    d = DPMSolverMultistepScheduler()
    d.set_timesteps(7)
    np.testing.assert_array_equal(d.timesteps, np.linspace(0, 999, 8).round()[::-1][:-1].astype(np.int64))


# ---- DDIM ----------------------------------------------------------------------

DDIM_CASES = [
    dict(prediction_type="epsilon", clip_sample=False, eta=0.0, use_clipped=False),
    dict(prediction_type="epsilon", clip_sample=True, eta=0.0, use_clipped=False),
    dict(prediction_type="epsilon", clip_sample=True, eta=1.0, use_clipped=True),
    dict(prediction_type="sample", clip_sample=True, eta=0.5, use_clipped=False),
    dict(prediction_type="v_prediction", clip_sample=False, eta=0.3, use_clipped=False),
    dict(prediction_type="v_prediction", thresholding=True, sample_max_value=2.5, eta=0.0, use_clipped=False),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", DDIM_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_ddim_step(case, dtype):
    case = dict(case)
    eta, use_clipped = case.pop("eta"), case.pop("use_clipped")
    cfg = _cfg(case)
    sch = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, **case)
    sch.set_timesteps(20)
    x = rand(SHAPE, 12, dtype)
    m = rand(SHAPE, 13, dtype, scale=0.7)
    ts = sch.timesteps
    t = np.array([ts[0], ts[-1], ts[5], ts[11], ts[3]])
    z = hr.normal(SHAPE, 5, 0, dtype=np.dtype(dtype).name)
    out = sch.step(m, t, x, eta=eta, use_clipped_model_output=use_clipped, seed=5, offset=0)
    rp, rx0 = ref_ddim(sch, cfg, m, t, x, z, eta, use_clipped)
    check(out.prev_sample, rp, dtype)
    check(out.pred_original_sample, rx0, dtype)


def test_ddim_set_alpha_to_one_false():
    sch = DDIMScheduler(set_alpha_to_one=False, clip_sample=False)
    sch.set_timesteps(10)
    x, m = rand(SHAPE, 1, np.float64), rand(SHAPE, 2, np.float64)
    out = sch.step(m, 0, x)
    rp, _ = ref_ddim(
        sch, _cfg(dict(clip_sample=False, set_alpha_to_one=False)), m, np.zeros(5, int), x, x, 0.0, False
    )
    check(out.prev_sample, rp, np.float64)


# ---- DPM-Solver++(2M) ---------------------------------------------------------------


def _lin_model(m_seed, dtype):
    """A deterministic 'model': a fixed linear map of x plus a t-dependent shift."""
    rng = np.random.default_rng(m_seed)
    W = rng.standard_normal(SHAPE[1:]) * 0.3

    def model(x, t, i=None):
        return (W * x + np.sin(t / 100.0)).astype(dtype)

    return model


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "pred,solver_type,steps",
    [("epsilon", "midpoint", 10), ("v_prediction", "heun", 20), ("sample", "midpoint", 5)],
)
def test_dpm_solver_run(pred, solver_type, steps, dtype):
    sch = DPMSolverMultistepScheduler(
        beta_schedule="squaredcos_cap_v2", prediction_type=pred, solver_type=solver_type
    )
    sch.set_timesteps(steps)
    model = _lin_model(3, dtype)
    x0 = rand(SHAPE, 14, dtype)
    # per-sample timesteps: sample 1 starts two steps later than the others
    ts = list(sch.timesteps)
    x = x0.copy()
    pos = np.zeros(SHAPE[0], dtype=int)
    pos[1] = 2
    got = {b: [] for b in range(SHAPE[0])}
    while (pos < len(ts)).any():
        pos_c = np.minimum(pos, len(ts) - 1)
        t = np.array([ts[p] for p in pos_c])
        m = np.stack([model(x[b], t[b]) for b in range(SHAPE[0])])
        if (pos >= len(ts)).any():
            break
        x = sch.step(m, t, x).prev_sample
        for b in range(SHAPE[0]):
            got[b].append(x[b].copy())
        pos += 1
    A = sch.alphas_cumprod
    for b in (0, 1, 2):
        start = 2 if b == 1 else 0
        ref = ref_dpm_run(
            A,
            ts[start:],
            lambda xx, t, i: model(xx.astype(dtype), t),
            x0[b].astype(np.float64),
            pred,
            solver_type,
        )
        for k, r in enumerate(ref[: len(got[b])]):
            check(got[b][k], r, dtype)


# ---- determinism ---------------------------------------------------------------------


def test_ddim_eta0_deterministic_and_ddpm_thread_invariant():
    x = rand((8, 3, 64, 64), 1, np.float32)
    m = rand((8, 3, 64, 64), 2, np.float32)
    d = DDIMScheduler()
    d.set_timesteps(50)
    a = d.step(m, 500, x, seed=1).prev_sample
    b = d.step(m, 500, x, seed=2).prev_sample
    np.testing.assert_array_equal(a, b)
    s = DDPMScheduler()
    s.set_timesteps(1000)
    t = np.arange(8) * 100 + 7
    outs = []
    for n in (1, 2, 3):
        with heatbath.threads(n):
            outs.append(s.step(m, t, x, seed=123, offset=5).prev_sample)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_all_cpu_levels_agree():
    from heatbath._backend import cpu_level_as

    x = rand(SHAPE, 1, np.float32)
    m = rand(SHAPE, 2, np.float32)
    s = DDPMScheduler(clip_sample=False)
    s.set_timesteps(100)
    outs = []
    for lv in heatbath.cpu_levels():
        with cpu_level_as(lv):
            outs.append(s.step(m, np.array([990, 500, 10, 0, 300]), x, seed=3, offset=1).prev_sample)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_offset_continues_between_steps():
    s = DDPMScheduler(clip_sample=False)
    s.set_timesteps(10)
    x = rand(SHAPE, 1, np.float32)
    m = rand(SHAPE, 2, np.float32)
    a = s.step(m, 900, x, seed=4).prev_sample
    b = s.step(m, 900, x, seed=4).prev_sample  # continues the stream: other noise
    assert not np.array_equal(a, b)
    c = s.step(m, 900, x, seed=4, offset=x.size).prev_sample
    np.testing.assert_array_equal(b, c)
