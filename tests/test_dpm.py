"""The 2015 Gaussian diffusion probabilistic model: the bound K against its
closed form on Gaussian data, the paper's entropy bounds, sampling with the
exact reverse kernel, inpainting, training, checkpoints and errors."""

from __future__ import annotations

import math

import heatbath
import numpy as np
import pytest
from heatbath import nn
from heatbath.checkpoint import CheckpointError
from heatbath.data import toy
from heatbath.diffusion.dpm import GaussianDPM, geometric_betas, paper_betas

M = np.array([0.7, -1.2])
S = np.array([0.5, 0.9])  # per-dimension standard deviations (the kernel's variance is < 1)


def exact_kernel(model: GaussianDPM, m=M, s=S):
    """Per step t: the exact reverse kernel q(x_{t-1} | x_t) = N(a x_t + b, v)
    for data N(m, diag(s^2)), arrays (T, d) (row t - 1; row 0 unused)."""
    abar_prev = np.concatenate([[1.0], model.abar[:-1]])[:, None]
    alpha = model.alphas[:, None]
    m1 = np.sqrt(abar_prev) * m
    v1 = abar_prev * s**2 + 1 - abar_prev
    v2 = alpha * v1 + model.betas[:, None]
    a = np.sqrt(alpha) * v1 / v2
    b = m1 - a * np.sqrt(alpha) * m1
    v = v1 - alpha * v1**2 / v2
    return a, b, v


class ExactKernelNet(nn.Module):
    """Outputs the paper-mode (mu_coeff, beta_coeff) that make the model's
    reverse kernel equal to the exact one."""

    def __init__(self, model: GaussianDPM):
        super().__init__()
        self.a, self.b, self.v = exact_kernel(model)
        self.beta = model.betas[:, None]
        self.T = model.T

    def forward(self, x, i):
        beta = self.beta[i]
        mu = self.a[i] * x + self.b[i]
        mu_coeff = (mu - x * np.sqrt(1 - beta)) / np.sqrt(beta)
        logit = lambda p: np.log(p / (1 - p))  # noqa: E731
        beta_coeff = math.sqrt(self.T) * (logit(self.v[i]) - logit(beta))
        return np.concatenate([mu_coeff, beta_coeff], axis=1)


def gaussian_data(n=4000, seed=0):
    z = np.random.default_rng(seed).standard_normal((n, 2))
    z = (z - z.mean(0)) / z.std(0)  # exact first and second sample moments
    return M + S * z


@pytest.mark.parametrize("schedule", ["geometric", "paper"])
def test_bound_equals_closed_form_with_exact_kernel(schedule):
    model = GaussianDPM(2, 20, schedule=schedule, step1_beta=1e-3)
    model.net = ExactKernelNet(model)
    # closed form: E KL(q(x_{t-1}|x_t,x_0) || q(x_{t-1}|x_t)) = 1/2 log(v_t / post_var_t),
    # since E (posterior mean - a x_t - b)^2 = v_t - post_var_t
    _, _, v = exact_kernel(model)
    kl = 0.5 * np.log(v[1:] / model.post_var[1:, None]).sum()
    h_T = 0.5 * (1 + math.log(2 * math.pi)) + 0.5 * math.log(1 - model.abar[-1])
    h_1 = 0.5 * (1 + math.log(2 * math.pi)) + 0.5 * math.log(model.betas[0])
    analytic_bits = (-kl + 2 * (h_T - h_1 - 0.5 * (1 + math.log(2 * math.pi)))) / math.log(2)
    b = model.bound(gaussian_data(), quadrature=3)
    assert abs(b.bits - analytic_bits) < 1e-6
    assert b.bits_per_dim == pytest.approx(b.bits / 2)


def test_exact_reverse_entropy_lies_within_the_papers_bounds():
    model = GaussianDPM(1, 30, step1_beta=1e-3)
    for s in (0.1, 0.5, 1.0):
        _, _, v = exact_kernel(model, m=np.array([0.0]), s=np.array([s]))
        h = 0.5 * np.log(2 * np.pi * np.e * v[1:, 0])
        lo, hi = model.entropy_bounds(np.arange(2, 31))
        assert np.all(lo <= h + 1e-12) and np.all(h <= hi + 1e-12)


def test_sampling_with_exact_kernel_reproduces_the_gaussian():
    model = GaussianDPM(2, 40, schedule="paper", step1_beta=1e-3)
    model.net = ExactKernelNet(model)
    x = model.sample(20000, seed=3)
    n = x.shape[0]
    # the model's p(x_T) = N(0, I) differs from q(x_T); with abar_T ~ 1/T the
    # mean is off by at most sqrt(abar_T) |m| (shrunk further by the chain)
    tol_m = 5 * S / math.sqrt(n) + math.sqrt(model.abar[-1]) * np.abs(M)
    assert np.all(np.abs(x.mean(0) - math.sqrt(1 - model.betas[0]) * M) < tol_m)
    # the returned x_1 carries the first forward step: variance alpha_1 s^2 + beta_1
    b1 = model.betas[0]
    tol_v = 5 * S**2 * math.sqrt(2 / n) + model.abar[-1] * (1 + S**2)
    assert np.all(np.abs(x.var(0) - ((1 - b1) * S**2 + b1)) < tol_v)


def test_inpainting_keeps_known_part_and_samples_the_rest():
    model = GaussianDPM(2, 40, schedule="paper", step1_beta=1e-3)
    model.net = ExactKernelNet(model)
    n = 20000
    known = np.tile([0.3, 0.0], (n, 1))
    mask = np.array([True, False])
    x = model.sample(n, seed=4, mask=mask, known=known)
    np.testing.assert_array_equal(x[:, 0], 0.3)
    # independent dimensions: the conditional of x_1 is its marginal N(m_1, s_1^2)
    assert abs(x[:, 1].mean() - math.sqrt(1 - model.betas[0]) * M[1]) < 5 * S[1] / math.sqrt(n) + math.sqrt(model.abar[-1]) * abs(M[1])
    b1 = model.betas[0]
    assert abs(x[:, 1].var() - ((1 - b1) * S[1] ** 2 + b1)) < 5 * S[1] ** 2 * math.sqrt(2 / n) + model.abar[-1] * (
        1 + S[1] ** 2)


def test_schedules():
    b = paper_betas(40, 1e-3)
    assert b.shape == (40,) and b[0] == pytest.approx(1e-6 + 1e-3 + (1 / 40) * (1 - 2e-6 - 1e-3 - 1e-5 + 1e-6))
    g = geometric_betas(40, 1e-5)
    abar = np.cumprod(1 - g)
    assert 1 - abar[0] == pytest.approx(1e-5)
    assert abar[-1] == pytest.approx(1e-3)
    assert np.all(np.diff(np.log(1 - abar)) > 0)


@pytest.mark.parametrize("mode,net,steps", [("paper", "mlp", 2000), ("epsilon", "mlp", 600), ("paper", "rbf", 600)])
def test_training_raises_the_bound(mode, net, steps):
    tr, te = toy.load("swissroll", 4000)
    model = GaussianDPM(2, 20, mode=mode, net=net, hidden=64, grid=8, seed=1)
    before = model.bound(te[:500])
    model.fit(tr, steps=steps, batch_size=256, lr=3e-3, progress=False)
    after = model.bound(te[:500])
    # paired over the same held-out points and noise draws: a gain of at
    # least half a bit, five standard errors clear
    gain = after.per_sample - before.per_sample
    assert gain.mean() > 0.5 + 5 * gain.std(ddof=1) / math.sqrt(gain.size)


def test_training_is_reproducible_across_thread_counts():
    tr, _ = toy.load("swissroll", 2000)
    params = []
    for threads in (1, 2):
        with heatbath.threads(threads):
            m = GaussianDPM(2, 10, net="mlp", hidden=16, seed=7)
            m.fit(tr, steps=20, batch_size=64, progress=False)
        params.append(m.net.state_dict())
    for k in params[0]:
        np.testing.assert_array_equal(params[0][k], params[1][k])


def test_checkpoint_round_trip_and_errors(tmp_path):
    tr, te = toy.load("swissroll", 1000)
    m = GaussianDPM(2, 10, net="mlp", hidden=16, seed=2)
    m.fit(tr, steps=10, batch_size=64, progress=False)
    path = m.save(str(tmp_path / "model"))
    m2 = GaussianDPM.load(path)
    np.testing.assert_array_equal(m2.sample(50, seed=1), m.sample(50, seed=1))
    assert m2.bound(te[:100]).bits == m.bound(te[:100]).bits
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="corrupt"):
        GaussianDPM.load(str(bad))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        GaussianDPM.load(str(tmp_path / "missing.npz"))
    from heatbath import checkpoint

    other = checkpoint.save(str(tmp_path / "other"), "SomethingElse", {}, {"a": np.zeros(2)})
    with pytest.raises(CheckpointError, match="SomethingElse"):
        GaussianDPM.load(other)


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    m = GaussianDPM(2, 10, net="mlp", hidden=8)
    path = m.save(str(tmp_path / "m.npz"))
    with open(path, "rb") as f:
        before = f.read()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        m.save(path)
    with open(path, "rb") as f:
        assert f.read() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.parametrize(
    "call,exc,name",
    [
        (lambda: GaussianDPM(0), ValueError, "dim"),
        (lambda: GaussianDPM(2, 1), ValueError, "T"),
        (lambda: GaussianDPM(2, mode="x"), ValueError, "mode"),
        (lambda: GaussianDPM(2, net="cnn"), ValueError, "net"),
        (lambda: GaussianDPM(2, schedule=[0.1, 0.2]), ValueError, "schedule"),
        (lambda: GaussianDPM(2, step1_beta=0), ValueError, "step1_beta"),
        (lambda: GaussianDPM(2).bound(np.zeros((5, 3))), ValueError, "x"),
        (lambda: GaussianDPM(2).bound(np.full((5, 2), np.nan)), ValueError, "x"),
        (lambda: GaussianDPM(2).fit(np.zeros((0, 2))), ValueError, "x"),
        (lambda: GaussianDPM(2).fit(np.zeros((5, 2)), steps=0), ValueError, "steps"),
        (lambda: GaussianDPM(2).sample(0), ValueError, "n"),
        (lambda: GaussianDPM(2).entropy_bounds(1), ValueError, "t"),
    ],
)
def test_bad_input(call, exc, name):
    with pytest.raises(exc, match=f"'{name}'"):
        call()


def test_learned_schedule_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = GaussianDPM(2, 12, net="mlp", hidden=8, n_basis=4, learn_schedule=True, step1_beta=1e-3, seed=3)
    model.schedule_coef.params["c"][...] = rng.normal(0, 0.3, 4)
    model._refresh_schedule()
    x0 = toy.swiss_roll(64, seed=1)
    t = rng.integers(2, 13, size=64)
    noise = rng.standard_normal((64, 2))

    def loss():
        model.trainable.zero_grad()
        return model._paper_loss(x0, t, noise)

    loss()
    g = model.schedule_coef.grads["c"].copy()
    c = model.schedule_coef.params["c"]
    h = 1e-6
    for j in range(4):
        old = c[j]
        c[j] = old + h
        model._refresh_schedule()
        lp = loss()
        c[j] = old - h
        model._refresh_schedule()
        lm = loss()
        c[j] = old
        model._refresh_schedule()
        num = (lp - lm) / (2 * h)
        assert abs(num - g[j]) <= 1e-5 * max(1.0, abs(num)), (j, num, g[j])


def test_learned_schedule_trains_and_round_trips(tmp_path):
    tr, te = toy.load("swissroll", 2000)
    m = GaussianDPM(2, 10, net="mlp", hidden=16, learn_schedule=True, seed=2)
    b0 = m.betas.copy()
    m.fit(tr, steps=30, batch_size=64, progress=False)
    assert m.betas[0] == b0[0] and not np.allclose(m.betas[1:], b0[1:])
    m2 = GaussianDPM.load(m.save(str(tmp_path / "m")))
    np.testing.assert_array_equal(m2.betas, m.betas)
    assert m2.bound(te[:50]).bits == m.bound(te[:50]).bits
    with pytest.raises(ValueError, match="'learn_schedule'"):
        GaussianDPM(2, mode="epsilon", learn_schedule=True)
