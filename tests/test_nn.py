"""Hand-written backward passes of heatbath.nn against central finite
differences (float64; relative error bound 1e-6, well above the O(h^2) +
rounding error of the difference quotient at h = 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath import nn


def _loss_and_grads(model, x, t, w):
    out = model.forward(x, t) if t is not None else model.forward(x)
    model.zero_grad()
    dx = model.backward(w)
    return float((out * w).sum()), dx


def _check(model, x, t=None, eps=1e-6, tol=1e-6):
    rng = np.random.default_rng(1)
    out = model.forward(x, t) if t is not None else model.forward(x)
    w = rng.standard_normal(out.shape)
    _, dx = _loss_and_grads(model, x, t, w)
    grads = {k: g.copy() for k, _, g in model.named_parameters()}

    def f():
        o = model.forward(x, t) if t is not None else model.forward(x)
        return float((o * w).sum())

    for name, p, _ in model.named_parameters():
        flat = p.reshape(-1)
        idx = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
        for i in idx:
            old = flat[i]
            flat[i] = old + eps
            fp = f()
            flat[i] = old - eps
            fm = f()
            flat[i] = old
            num = (fp - fm) / (2 * eps)
            ana = grads[name].reshape(-1)[i]
            assert abs(num - ana) <= tol * max(1.0, abs(num)), (name, i, num, ana)
    xf = x.reshape(-1)
    for i in rng.choice(xf.size, size=min(xf.size, 12), replace=False):
        old = xf[i]
        xf[i] = old + eps
        fp = f()
        xf[i] = old - eps
        fm = f()
        xf[i] = old
        num = (fp - fm) / (2 * eps)
        assert abs(num - dx.reshape(-1)[i]) <= tol * max(1.0, abs(num)), ("x", i)


@pytest.mark.parametrize("layer", ["tanh", "sigmoid", "relu", "leaky", "softplus"])
def test_activation_gradients(layer):
    rng = np.random.default_rng(0)
    act = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "relu": nn.ReLU(), "leaky": nn.LeakyReLU(),
           "softplus": nn.Softplus()}[layer]
    model = nn.Sequential(nn.Dense(4, 5, rng), act, nn.Dense(5, 3, rng))
    x = rng.standard_normal((7, 4))
    _check(model, x)


def test_normalized_rbf_gradients_including_centers_and_width():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((9, 2))
    model = nn.Sequential(nn.NormalizedRBF(centers, 0.7), nn.Dense(9, 3, rng))
    _check(model, rng.standard_normal((6, 2)))


def test_normalized_rbf_rows_sum_to_one():
    rng = np.random.default_rng(0)
    phi = nn.NormalizedRBF(rng.standard_normal((5, 3)), 0.5).forward(rng.standard_normal((8, 3)))
    np.testing.assert_allclose(phi.sum(axis=1), 1.0, rtol=1e-12)


def test_temporal_readout_and_rbfnet_gradients():
    rng = np.random.default_rng(0)
    model = nn.RBFNet(2, 4, n_steps=40, grid=4, n_hidden=6, n_basis=5, rng=rng)
    x = rng.standard_normal((5, 2))
    t = rng.integers(0, 40, size=5)
    _check(model, x, t)


def test_time_mlp_gradients():
    rng = np.random.default_rng(0)
    model = nn.TimeMLP(6, 6, n_steps=100, hidden=(8, 8), n_embed=4, n_basis=4, rng=rng)
    x = rng.standard_normal((5, 6))
    t = rng.integers(0, 100, size=5)
    _check(model, x, t)


def test_bump_basis_rows_are_normalized_and_local():
    b = nn.bump_basis(40, 10)
    np.testing.assert_allclose(b.sum(axis=1), 1.0)
    assert b.argmax(axis=1)[0] == 0 and b.argmax(axis=1)[-1] == 9


def test_adam_minimizes_a_quadratic_and_matches_reference_update():
    rng = np.random.default_rng(0)
    layer = nn.Dense(3, 1, rng)
    opt = nn.Adam(layer, lr=0.1)
    p0 = layer.W.copy()
    g = rng.standard_normal(p0.shape)
    layer.grads["W"][...] = g
    layer.grads["b"][...] = 0
    opt.step()
    # first Adam step moves each coordinate by lr * sign(g) (bias-corrected m/sqrt(v) = g/|g|)
    np.testing.assert_allclose(layer.W, p0 - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-9)
    # and it converges on a least-squares problem
    X = rng.standard_normal((200, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    opt = nn.Adam(layer, lr=0.05)
    for _ in range(600):
        r = layer.forward(X) - y
        layer.zero_grad()
        layer.backward(2 * r / len(X))
        opt.step()
    np.testing.assert_allclose(layer.W.ravel(), [1.0, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(layer.b, [0.3], atol=1e-3)


def test_state_dict_round_trip_and_errors():
    rng = np.random.default_rng(0)
    a = nn.MLP([3, 4, 2], rng=rng)
    b = nn.MLP([3, 4, 2], rng=np.random.default_rng(5))
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ValueError, match="'state'"):
        b.load_state_dict({})
    with pytest.raises(ValueError, match="'sizes'"):
        nn.MLP([3], rng=rng)
