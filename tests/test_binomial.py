"""Binomial diffusion: the forward marginals and posteriors against brute
force, the bound with an exact model against the exact log-likelihood,
training on heartbeats, inpainting and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from heatbath.data import toy
from heatbath.diffusion.binomial import BinomialDPM


def test_forward_marginal_closed_form_matches_the_product_of_steps():
    m = BinomialDPM(3, 50)
    assert np.allclose(m.betas, 1 / (50 - np.arange(1, 51) + 1))
    survive = np.cumprod(1 - m.betas)
    np.testing.assert_allclose(m.rho, survive, atol=1e-15)
    assert m.rho[-1] == 0  # x_T is uniform


def test_posterior_matches_bayes_by_enumeration():
    T = 12
    m = BinomialDPM(1, T)
    # transition matrices P_t[a, b] = q(x_t = b | x_{t-1} = a)
    P = [np.array([[1 - b / 2, b / 2], [b / 2, 1 - b / 2]]) for b in m.betas]
    for x0 in (0, 1):
        dist = [np.eye(2)[x0]]
        for t in range(T):
            dist.append(dist[-1] @ P[t])
        for t in range(2, T + 1):
            for xt in (0, 1):
                joint = dist[t - 1] * P[t - 1][:, xt]  # q(x_{t-1}) q(x_t | x_{t-1})
                exact = joint[1] / joint.sum()
                got = m._posterior(np.array([[x0]], float), np.array([[xt]], float), np.array([t]))[0, 0]
                assert got == pytest.approx(exact, abs=1e-14)
            np.testing.assert_allclose(m._p1(np.array([[x0]], float), np.array([t]))[0, 0], dist[t][1], atol=1e-14)


def test_bound_of_exact_model_equals_log_likelihood_of_independent_bits():
    rng = np.random.default_rng(0)
    marg = np.array([0.1, 0.5, 0.8, 0.3])
    x = (rng.random((3000, 4)) < marg).astype(float)
    model = BinomialDPM(4, 30)
    model.marginal = marg  # the baseline kernels are then the exact reverse kernels
    for _, p, _ in model.net.named_parameters():
        p[...] = 0
    b = model.bound(x)
    logq = (x * np.log2(marg) + (1 - x) * np.log2(1 - marg)).sum(1)
    diff = b.per_sample - logq
    assert abs(diff.mean()) < 5 * diff.std(ddof=1) / math.sqrt(diff.size) + 1e-9


def test_training_on_heartbeats_beats_the_independent_bit_model():
    tr, te = toy.load("heartbeat", 4000)
    tr, te = tr.astype(float), te.astype(float)
    model = BinomialDPM(20, 50, hidden=64, seed=0)
    model.marginal = tr.mean(0)
    before = model.bound(te[:300])
    model.fit(tr, steps=400, batch_size=128, progress=False)
    after = model.bound(te[:300])
    gain = after.per_sample - before.per_sample
    # the independent-bit model has K ~ -20 H(1/5) = -14.4 bits; the true -2.32
    assert gain.mean() > 3.0 + 5 * gain.std(ddof=1) / math.sqrt(gain.size)


def test_sampling_and_inpainting():
    model = BinomialDPM(6, 20, hidden=8)
    s = model.sample(50, seed=1)
    assert s.shape == (50, 6) and s.dtype == np.uint8 and set(np.unique(s)) <= {0, 1}
    known = np.tile([1, 0, 1, 0, 1, 0], (50, 1))
    mask = np.array([True, True, True, False, False, False])
    x = model.sample(50, seed=2, mask=mask, known=known)
    np.testing.assert_array_equal(x[:, :3], known[:, :3])
    np.testing.assert_array_equal(model.sample(50, seed=1), s)


def test_checkpoint_round_trip(tmp_path):
    m = BinomialDPM(5, 10, hidden=8)
    m.fit(np.eye(5)[np.arange(40) % 5], steps=5, progress=False)
    m2 = BinomialDPM.load(m.save(str(tmp_path / "b")))
    np.testing.assert_array_equal(m2.sample(10, seed=3), m.sample(10, seed=3))


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: BinomialDPM(0), "dim"),
        (lambda: BinomialDPM(3, 1), "T"),
        (lambda: BinomialDPM(3, 10).fit(np.full((4, 3), 0.5)), "x"),
        (lambda: BinomialDPM(3, 10).bound(np.zeros((4, 2))), "x"),
        (lambda: BinomialDPM(3, 10).sample(0), "n"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        call()
