"""Noise schedules against float64 references written from the published
formulas (DDPM, improved DDPM, latent diffusion, GeoDiff, Sohl-Dickstein et
al. 2015, Lin et al. 2024), to 1e-12 relative."""

from __future__ import annotations

import math

import numpy as np
import pytest
from heatbath.schedules import SCHEDULES, NoiseSchedule, make_betas, rescale_zero_terminal_snr

RTOL = 1e-12


def ref_betas(name: str, T: int, b0: float = 1e-4, b1: float = 0.02) -> np.ndarray:
    if name == "linear":
        return np.array([b0 + (b1 - b0) * i / (T - 1) for i in range(T)])
    if name == "scaled_linear":
        r0, r1 = math.sqrt(b0), math.sqrt(b1)
        return np.array([(r0 + (r1 - r0) * i / (T - 1)) ** 2 for i in range(T)])
    if name == "squaredcos_cap_v2":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        return np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)])
    if name == "sigmoid":
        return np.array([1 / (1 + math.exp(-(-6 + 12 * i / (T - 1)))) * (b1 - b0) + b0 for i in range(T)])
    if name == "sohl_dickstein":
        out = []
        for i in range(T):
            base = 1.0 / (T + (2.0 - T) * i / (T - 1))
            lo = 1e-6 + (1e-3 if i == 0 else 0.0)
            out.append(lo + base * (1 - lo - 1e-5))
        return np.array(out)
    if name == "jsd":
        return np.array([1.0 / (T - i) for i in range(T)])
    raise AssertionError(name)


def close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [10, 1000])
def test_betas(name, T):
    close(make_betas(name, T), ref_betas(name, T))


def test_linear_rescaled_for_timesteps():
    # improved-diffusion: scale = 1000 / T on both ends
    close(make_betas("linear", 4000, rescale_for_timesteps=True), ref_betas("linear", 4000, 2.5e-5, 0.005))


@pytest.mark.parametrize("name", SCHEDULES)
def test_tables(name):
    T = 200
    s = NoiseSchedule(name, T)
    b = ref_betas(name, T)
    abar, prev = [], 1.0
    for x in b:
        prev *= 1 - x
        abar.append(prev)
    abar = np.array(abar)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    assert s.betas.dtype == np.float64 and len(s) == T
    close(s.alphas, 1 - b)
    close(s.alphas_cumprod, abar)
    close(s.alphas_cumprod_prev, abar_prev)
    close(s.sqrt_alphas_cumprod, np.sqrt(abar))
    if name == "jsd":  # abar_T = 0 exactly
        assert s.alphas_cumprod[-1] == 0
        sl = slice(0, T - 1)
    else:
        sl = slice(0, T)
    close(s.sqrt_one_minus_alphas_cumprod, np.sqrt(1 - abar))
    pv = b * (1 - abar_prev) / (1 - abar)
    close(s.posterior_variance, pv)
    close(s.posterior_log_variance_clipped[1:], np.log(pv[1:]))
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    close(s.posterior_mean_coef1, b * np.sqrt(abar_prev) / (1 - abar))
    close(s.posterior_mean_coef2, (1 - abar_prev) * np.sqrt(1 - b) / (1 - abar))
    close(s.snr[sl], abar[sl] / (1 - abar[sl]))
    close(s.sqrt_recip_alphas_cumprod[sl], 1 / np.sqrt(abar[sl]))
    close(s.sqrt_recipm1_alphas_cumprod[sl], np.sqrt(1 / abar[sl] - 1))


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_zero_terminal_snr(name):
    T = 1000
    b = ref_betas(name, T)
    sa = np.sqrt(np.cumprod(1 - b))
    # Lin et al. 2024, Algorithm 1
    sa_new = (sa - sa[-1]) * sa[0] / (sa[0] - sa[-1])
    s = NoiseSchedule(name, T, rescale_zero_snr=True)
    close(np.sqrt(s.alphas_cumprod[:-1]), sa_new[:-1], rtol=1e-10)
    assert s.alphas_cumprod[-1] == 0 and s.betas[-1] == 1.0
    assert abs(s.alphas_cumprod[0] - sa[0] ** 2) <= 1e-15
    close(rescale_zero_terminal_snr(b), s.betas)


def test_user_betas_and_errors():
    b = np.linspace(0.001, 0.2, 7)
    s = NoiseSchedule(b)
    close(s.alphas_cumprod, np.cumprod(1 - b))
    with pytest.raises(ValueError, match="'schedule'"):
        NoiseSchedule([0.1, 1.5])
    with pytest.raises(ValueError, match="'schedule'"):
        NoiseSchedule("cosine-ish")
    with pytest.raises(ValueError, match="'num_train_timesteps'"):
        NoiseSchedule("linear", 0)
    with pytest.raises(ValueError, match="'timestep'"):
        s.check_timesteps([0, 7])
    with pytest.raises(TypeError, match="'timestep'"):
        s.check_timesteps(1.5)
