"""The ceiling of the bound K: the entropy estimators against closed forms and
an independent 1-D integration, the exact identity K = ceiling - KL(q(x_T) ||
p(x_T)) for the model with the exact reverse kernels, and the Swiss roll
against its small-noise limit and a Monte Carlo estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from heatbath.data import toy
from heatbath.diffusion.ceiling import (
    CurveData,
    DiscreteData,
    GaussianData,
    step1_ceiling,
    swiss_roll_data,
)
from heatbath.diffusion.dpm import GaussianDPM
from test_dpm import ExactKernelNet, M, S, gaussian_data

scipy = pytest.importorskip("scipy")
from scipy import integrate, special  # noqa: E402

LOG2 = math.log(2.0)


def segment_entropy_1d(length: float, s: float) -> float:
    """H(U[0, length] + N(0, s^2)) in nats by adaptive 1-D integration of
    -p log p with the closed-form density (Phi(x/s) - Phi((x-length)/s)) / length."""

    def f(x):
        p = (special.ndtr(x / s) - special.ndtr((x - length) / s)) / length
        return -p * math.log(p) if p > 0 else 0.0

    return integrate.quad(
        f, -14 * s, length + 14 * s, points=[0.0, length], limit=800, epsabs=1e-13, epsrel=1e-12
    )[0]


def test_gaussian_entropy_and_step_are_closed_forms():
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    g = GaussianData([1.0, -2.0], cov)
    assert g.entropy().nats == pytest.approx(
        0.5 * math.log(np.linalg.det(2 * math.pi * math.e * cov)), abs=1e-12
    )
    b = 0.01
    g1 = g.after_step(b)
    np.testing.assert_allclose(g1.cov, (1 - b) * cov + b * np.eye(2))
    np.testing.assert_allclose(g1.mean, math.sqrt(1 - b) * np.array([1.0, -2.0]))
    c = step1_ceiling(g, b)
    assert c.bits == pytest.approx(-g1.entropy().nats / LOG2, abs=1e-12) and c.error == 0.0
    assert g.second_moment() == pytest.approx(5.0 + 2.5)


@pytest.mark.parametrize("schedule", ["geometric", "paper"])
def test_exact_kernel_model_reaches_the_ceiling_up_to_the_prior_mismatch(schedule):
    # For the model whose reverse kernels are the true reverse conditionals,
    # E K = -H(X^1) + abar_T (E|X^0|^2 - d) / 2 - KL(q(x_T) || N(0, I)) exactly.
    model = GaussianDPM(2, 20, schedule=schedule, step1_beta=1e-3)
    model.net = ExactKernelNet(model)
    data = GaussianData(M, S**2)
    b = model.bound(gaussian_data(), quadrature=3, data=data)
    a = model.abar[-1]
    mu, var = math.sqrt(a) * M, a * S**2 + 1 - a
    kl_T = 0.5 * np.sum(var + mu**2 - 1 - np.log(var))
    assert b.ceiling == pytest.approx(step1_ceiling(data, model.betas[0], abar_T=a).bits, abs=1e-12)
    assert b.gap == pytest.approx(kl_T / LOG2, abs=1e-6)
    assert b.bits < b.ceiling
    assert "ceiling" in str(b) and "gap" in str(b)


def test_bound_without_data_has_no_ceiling():
    model = GaussianDPM(2, 10, step1_beta=1e-3)
    b = model.bound(gaussian_data(200))
    assert b.ceiling is None and b.gap is None and "ceiling" not in str(b)
    with pytest.raises(ValueError, match="'data'"):
        model.bound(gaussian_data(200), data=GaussianData([0.0], [1.0]))


@pytest.mark.parametrize("length,s", [(2.0, 1e-3), (2.0, 0.1), (2.0, 1.0)])
def test_segment_smoothed_by_a_gaussian(length, s):
    c = CurveData(lambda t: np.stack([t, 0 * t], axis=1), (0.0, length), [s * s, s * s])
    e = c.entropy()
    oracle = segment_entropy_1d(length, s) + 0.5 * math.log(2 * math.pi * math.e * s * s)
    assert e.error < 1e-4
    assert abs(e.nats - oracle) <= e.error + 1e-9


def test_a_second_pass_of_the_curve_is_counted():
    # t -> |t| on [-1, 1] covers [0, 1] twice: the same distribution as the segment
    s = 0.2
    c = CurveData(lambda t: np.stack([np.abs(t), 0 * t], axis=1), (-1.0, 1.0), [s * s, s * s])
    e = c.entropy()
    oracle = segment_entropy_1d(1.0, s) + 0.5 * math.log(2 * math.pi * math.e * s * s)
    assert e.error < 1e-3 and abs(e.nats - oracle) <= e.error + 1e-9


@pytest.mark.parametrize("scale,v", [(1.0, 0.01), (1.0, 1.0), (0.3, 1e-4)])
def test_gaussian_as_a_curve_with_uneven_speed(scale, v):
    # c(t) = scale * Phi^-1(t), t ~ U(0, 1): c(T) ~ N(0, scale^2), X ~ N(0, scale^2 + v)
    c = CurveData(lambda t: scale * special.ndtri(t)[:, None], (1e-15, 1 - 1e-15), [v])
    e = c.entropy()
    assert e.error < 1e-3
    assert abs(e.nats - 0.5 * math.log(2 * math.pi * math.e * (scale**2 + v))) <= e.error + 1e-9


def test_noiseless_swiss_roll_matches_its_small_noise_limit():
    # beta_1 -> 0: H(X^1) -> log|t_range| + E log|d(a c)/dt| + 1/2 log(2 pi e beta_1)
    # (the density along the curve times a Gaussian across it), with a = sqrt(1 - beta_1)
    beta = 1e-8
    roll = swiss_roll_data(0.0)
    t0, t1 = roll.t_range
    x, w = np.polynomial.legendre.leggauss(400)
    t = 0.5 * (t1 - t0) * x + 0.5 * (t1 + t0)
    raw_speed = np.sqrt(1 + t * t)  # |d/dt (t cos t, t sin t)|
    # the standardized curve scales the coordinates by 1/std: speed of (cos t - t sin t, sin t + t cos t) / std
    vel = np.stack([np.cos(t) - t * np.sin(t), np.sin(t) + t * np.cos(t)], axis=1) / toy._ROLL_STD
    assert np.allclose(np.linalg.norm(vel * toy._ROLL_STD, axis=1), raw_speed)
    e_log_speed = 0.5 * np.sum(w * np.log(math.sqrt(1 - beta) * np.linalg.norm(vel, axis=1)))
    h_limit = math.log(t1 - t0) + e_log_speed + 0.5 * math.log(2 * math.pi * math.e * beta)
    h = roll.after_step(beta).entropy(check=False).nats
    assert abs(h - h_limit) < 1e-3


def test_swiss_roll_ceiling_agrees_with_monte_carlo():
    # an independent estimate: draws of X^1 from the generator, log p(x) by a fine
    # uniform grid over t (spacing far below the noise width)
    noise, beta, n = 0.1, 1e-3, 400
    c = -swiss_roll_data(noise).after_step(beta).entropy(check=False).nats / LOG2
    g = np.random.default_rng(3)
    x1 = math.sqrt(1 - beta) * toy.swiss_roll(n, seed=4, noise=noise) + math.sqrt(beta) * g.standard_normal(
        (n, 2)
    )
    t = np.linspace(toy._T0, toy._T1, 30_001)
    curve = (
        math.sqrt(1 - beta) * (np.stack([t * np.cos(t), t * np.sin(t)], 1) - toy._ROLL_MEAN) / toy._ROLL_STD
    )
    v = (1 - beta) * (noise / toy._ROLL_STD) ** 2 + beta
    logp = np.empty(n)
    for i in range(n):
        q = -0.5 * (((x1[i] - curve) ** 2) / v).sum(1)
        m = q.max()
        logp[i] = m + math.log(np.exp(q - m).mean()) - 0.5 * (2 * math.log(2 * math.pi) + np.log(v).sum())
    est, se = logp.mean() / LOG2, logp.std(ddof=1) / math.sqrt(n) / LOG2
    assert abs(c - est) < 4 * se


def test_discrete_data_ceiling_is_minus_the_entropy():
    c = step1_ceiling(DiscreteData(math.log2(5)), 1e-3)
    assert c.bits == pytest.approx(-math.log2(5)) and c.error == 0.0


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: GaussianData([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), ValueError, "positive definite"),
        (lambda: GaussianData([0.0], [[1.0, 0.0], [0.0, 1.0]]), ValueError, "'cov'"),
        (lambda: CurveData("roll", (0, 1), 1.0), TypeError, "'curve'"),
        (lambda: CurveData(lambda t: t[:, None], (1, 0), 1.0), ValueError, "'t_range'"),
        (lambda: CurveData(lambda t: t[:, None], (0, 1), -1.0), ValueError, "'noise_var'"),
        (lambda: CurveData(lambda t: t, (0, 1), 1.0), ValueError, "'curve'"),
        (lambda: step1_ceiling(GaussianData([0.0], [1.0]), 0.0), ValueError, "'step1_beta'"),
        (lambda: step1_ceiling(GaussianData([0.0], [1.0]), "1e-3"), TypeError, "'step1_beta'"),
        (lambda: step1_ceiling(np.zeros(3), 1e-3), TypeError, "'data'"),
        (lambda: swiss_roll_data(-0.1), ValueError, "'noise'"),
        (lambda: DiscreteData(-1.0), ValueError, "'entropy_bits'"),
    ],
)
def test_bad_arguments_name_themselves(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_zero_noise_curve_has_minus_infinite_entropy():
    assert swiss_roll_data(0.0).entropy().nats == -math.inf
