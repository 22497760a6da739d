"""Sampler correctness without training: for data x0 ~ N(mu, Sigma) the
optimal epsilon-predictor is known in closed form. With
x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, x_t ~ N(sqrt(abar) mu, C_t),
C_t = abar Sigma + (1 - abar) I, and Cov(eps, x_t) = sqrt(1 - abar) I, so

    eps*(x_t, t) = E[eps | x_t] = sqrt(1 - abar) C_t^{-1} (x_t - sqrt(abar) mu).

Each sampler driven by eps* must reproduce mu and Sigma. The predictor is
affine in x_t, so every sampler's output law is Gaussian and computable
exactly by pushing probes through the scheduler's own steps: that gives the
discretization bias of each sampler (no statistical error), and the sample
moments must match (mu, Sigma) within statistical error plus that bias."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath.diffusion import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, sample

MU = np.array([1.0, -0.5, 2.0])
L = np.array([[1.0, 0.0, 0.0], [0.6, 0.5, 0.0], [-0.3, 0.4, 0.7]])
SIGMA = L @ L.T  # non-diagonal
D = 3
N = 4000


def eps_model(sch):
    A = sch.alphas_cumprod
    cache = {}

    def model(x, t):
        t = int(t)
        if t not in cache:
            a = A[t]
            C = a * SIGMA + (1 - a) * np.eye(D)
            M = np.sqrt(1 - a) * np.linalg.inv(C)
            cache[t] = (M, np.sqrt(a) * MU)
        M, b = cache[t]
        return (x - b) @ M.T

    return model


def make(kind, steps):
    if kind == "ddpm":
        s = DDPMScheduler(clip_sample=False)
    elif kind == "ddim":
        s = DDIMScheduler(clip_sample=False, timestep_spacing="trailing")
    else:
        s = DPMSolverMultistepScheduler()
    s.set_timesteps(steps)
    return s


def exact_law(kind, steps):
    """Mean and covariance of the sampler's output for x_T ~ N(0, I)."""
    sch = make(kind, steps)
    model = eps_model(sch)
    if kind == "ddpm":
        m, C = np.zeros(D), np.eye(D)
        for t in sch.timesteps:
            probes = np.vstack([m, m + np.eye(D)])
            zero = np.zeros_like(probes)
            f = sch.step(model(probes, t), int(t), probes, noise=zero).prev_sample
            A = (f[1:] - f[0]).T
            e = np.vstack([np.zeros(D), np.eye(D)])
            g = sch.step(model(np.zeros((D + 1, D)), t), int(t), np.zeros((D + 1, D)), noise=e).prev_sample
            S = (g[1:] - g[0]).T
            m, C = f[0], A @ C @ A.T + S @ S.T
        return m, C
    probes = np.vstack([np.zeros(D), np.eye(D)])
    x = probes.copy()
    for t in sch.timesteps:
        x = sch.step(model(x, t), int(t), x).prev_sample
    A = (x[1:] - x[0]).T
    return x[0], A @ A.T


def stat_sigmas():
    se_mean = np.sqrt(np.diag(SIGMA) / N)
    d = np.diag(SIGMA)
    se_cov = np.sqrt((np.outer(d, d) + SIGMA**2) / N)
    return se_mean, se_cov


def ddim_variances_1d(lams, steps):
    """Independent closed form of DDIM (eta = 0, trailing spacing) on an
    eigen-direction of Sigma with eigenvalue lam: each step multiplies the
    centred sample by (sqrt(a' a) lam + sqrt((1 - a')(1 - a))) / (a lam + 1 - a)."""
    A = make("ddim", steps).alphas_cumprod
    T = A.size
    ts = np.round(np.arange(T, 0, -T / steps)).astype(int) - 1
    out = []
    for lam in lams:
        v = 1.0
        for t in ts:
            a, p = A[t], t - T // steps
            ap = A[p] if p >= 0 else 1.0
            v *= ((np.sqrt(ap * a) * lam + np.sqrt((1 - ap) * (1 - a))) / (a * lam + 1 - a)) ** 2
        out.append(v)
    return np.array(out)


@pytest.mark.parametrize("kind,steps", [("ddpm", 1000), ("ddim", 50), ("dpm", 50)])
def test_sampler_reproduces_gaussian_data(kind, steps):
    sch = make(kind, steps)
    x = sample(eps_model(sch), (N, D), sch, seed=2024, progress=False, dtype="float64")
    assert x.shape == (N, D) and x.dtype == np.float64
    m_hat, C_hat = x.mean(0), np.cov(x.T)
    m_ex, C_ex = exact_law(kind, steps)
    se_mean, se_cov = stat_sigmas()
    # the samples follow the sampler's exact output law (5 standard errors)
    assert np.all(np.abs(m_hat - m_ex) <= 5 * se_mean), (m_hat - m_ex, se_mean)
    assert np.all(np.abs(C_hat - C_ex) <= 5 * se_cov), (C_hat - C_ex, se_cov)
    if kind == "ddim":
        # DDIM is a first-order ODE solver: at 50 steps its law under-disperses
        # by several percent (Cauchy-Schwarz on each step's factor), more than
        # the statistical error of N samples. Check that bias against the
        # independent per-eigendirection closed form instead.
        lam, U = np.linalg.eigh(SIGMA)
        v = ddim_variances_1d(lam, steps)
        np.testing.assert_allclose(U.T @ C_ex @ U, np.diag(v), atol=1e-9)
        assert np.all(np.abs(m_ex - MU) < se_mean)
        return
    # DDPM at 1000 steps and DPM-Solver++ at 50: the discretization bias is
    # below the statistical error, so the samples reproduce (mu, Sigma)
    assert np.all(np.abs(m_ex - MU) < se_mean), (m_ex - MU, se_mean)
    assert np.all(np.abs(C_ex - SIGMA) < se_cov), (C_ex - SIGMA, se_cov)
    assert np.all(np.abs(m_hat - MU) <= 5 * se_mean + np.abs(m_ex - MU)), (m_hat - MU, se_mean)
    assert np.all(np.abs(C_hat - SIGMA) <= 5 * se_cov + np.abs(C_ex - SIGMA)), (C_hat - SIGMA, se_cov)


def law_errors(kind, counts):
    """Max |mean - mu| and max |cov - Sigma| of the exact law per step count."""
    out = []
    for n in counts:
        m, C = exact_law(kind, n)
        out.append((n, float(np.abs(m - MU).max()), float(np.abs(C - SIGMA).max())))
    return out


def test_error_shrinks_with_steps():
    """Exact (noise-free) error of each sampler's law as the step count grows
    (run this file as a script to print the table)."""
    ddim = law_errors("ddim", (10, 20, 40))
    dpm = law_errors("dpm", (10, 20, 40))
    ddpm = law_errors("ddpm", (50, 100, 200))
    for errs in (ddim, dpm, ddpm):
        for (_, _, e0), (_, _, e1) in zip(errs, errs[1:]):
            assert e0 / e1 > 1.5, errs  # halving the step size shrinks the error
    for (_, _, e_ddim), (_, _, e_dpm) in zip(ddim, dpm):
        assert e_dpm < e_ddim  # the second-order solver beats DDIM at equal steps


if __name__ == "__main__":
    se_mean, se_cov = stat_sigmas()
    print(f"statistical error at N={N}: mean {se_mean.max():.4f}, cov {se_cov.max():.4f} (max over entries)")
    for kind, counts in (
        ("ddim", (5, 10, 20, 50, 100)),
        ("dpm", (5, 10, 20, 50, 100)),
        ("ddpm", (10, 50, 100, 250, 1000)),
    ):
        for n, em, ec in law_errors(kind, counts):
            print(f"{kind:5s} steps {n:5d}: max|mean - mu| {em:.2e}  max|cov - Sigma| {ec:.2e}")
