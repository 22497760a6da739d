"""AIS, reverse AIS (RAISE) and exact log Z against exact enumeration: on
small random RBMs (weak to strongly coupled) the exact log Z lies within 3
standard errors of AIS and of RAISE, the two bracket it, and with short
schedules their biases point the predicted ways (AIS low, RAISE high)."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath.ebm import BernoulliRBM, GaussianBernoulliRBM, LogZEstimate, ais


def _bits(m):
    idx = np.arange(2**m)
    return ((idx[:, None] >> np.arange(m)) & 1).astype(np.float64)


def _model(nv, nh, scale, seed, cls=BernoulliRBM, **kw):
    rng = np.random.default_rng(seed)
    r = cls(n_components=nh, random_state=seed, dtype="float64", **kw)
    r.components_ = rng.normal(0, scale, (nh, nv))
    r.intercept_hidden_ = rng.normal(0, 1, nh)
    r.intercept_visible_ = rng.normal(0, 1, nv)
    r.n_features_in_ = nv
    return r


def _brute_log_z(r):
    """Both layers enumerated (independent of the one-layer-analytic code)."""
    W, c, b = r.components_, r.intercept_hidden_, r.intercept_visible_
    nh, nv = W.shape
    V, H = _bits(nv), _bits(nh)
    neg_e = (V @ b)[:, None] + (H @ c)[None, :] + V @ W.T @ H.T
    m = neg_e.max()
    return m + np.log(np.exp(neg_e - m).sum())


def _visible_probs(r):
    W, c, b = r.components_, r.intercept_hidden_, r.intercept_visible_
    V = _bits(W.shape[1])
    lp = V @ b + np.logaddexp(0, V @ W.T + c).sum(1)
    p = np.exp(lp - lp.max())
    return V, p / p.sum()


@pytest.mark.parametrize("nv,nh", [(6, 4), (4, 7), (8, 8)])
def test_exact_log_z_matches_brute_force(nv, nh):
    r = _model(nv, nh, 1.5, seed=nv * nh)
    est = r.log_partition("exact")
    assert isinstance(est, LogZEstimate) and est.method == "exact" and est.stderr == 0
    assert abs(est.log_z - _brute_log_z(r)) < 1e-10


# (n_visible, n_hidden, weight scale): weak, medium and strongly coupled
MODELS = [(12, 10, 0.5), (20, 8, 2.0), (10, 16, 3.0), (12, 12, 3.0)]


@pytest.mark.parametrize("nv,nh,scale", MODELS)
def test_ais_and_raise_against_exact(nv, nh, scale):
    r = _model(nv, nh, scale, seed=1)
    exact = r.log_partition("exact").log_z
    a = r.log_partition("ais", n_runs=100, betas=1000, seed=0)
    assert a.method == "ais" and a.log_weights.shape == (100,) and 1 <= a.ess <= 100
    assert abs(a.log_z - exact) < 3 * a.stderr, (a, exact)
    # RAISE from exact samples of the model (a stochastic upper bound)
    V, p = _visible_probs(r)
    start = V[np.random.default_rng(1).choice(p.size, 100, p=p)]
    rr = r.log_partition("raise", start=start, betas=1000, seed=0)
    assert abs(rr.log_z - exact) < 3 * rr.stderr, (rr, exact)
    # the bracket, with each side's statistical slack
    assert a.log_z - 3 * a.stderr <= exact <= rr.log_z + 3 * rr.stderr


def test_raise_default_start_and_data_base_rates():
    r = _model(12, 10, 0.5, seed=2)
    exact = r.log_partition("exact").log_z
    V, p = _visible_probs(r)
    data = V[np.random.default_rng(3).choice(p.size, 500, p=p)]
    a = r.log_partition("ais", n_runs=100, betas=500, data=data, seed=1)
    rr = r.log_partition("raise", n_runs=100, betas=500, data=data, seed=1, n_burn=200)
    assert abs(a.log_z - exact) < 3 * a.stderr
    assert abs(rr.log_z - exact) < 3 * rr.stderr


@pytest.mark.parametrize("nv,nh", [(10, 16), (12, 12)])
def test_short_schedules_are_biased_the_predicted_ways(nv, nh):
    # Jensen: E[log Z_AIS] <= log Z <= E[log Z_RAISE]; with 5 betas and 5 runs
    # the gaps are many standard errors of the mean of 50 repeats
    r = _model(nv, nh, 3.0, seed=2)
    exact = r.log_partition("exact").log_z
    V, p = _visible_probs(r)
    rng = np.random.default_rng(0)
    A, R = [], []
    for rep in range(50):
        A.append(r.log_partition("ais", n_runs=5, betas=5, seed=rep).log_z)
        R.append(r.log_partition("raise", start=V[rng.choice(p.size, 5, p=p)], betas=5, seed=rep).log_z)
    A, R = np.array(A), np.array(R)
    assert A.mean() + 3 * A.std(ddof=1) / np.sqrt(50) < exact < R.mean() - 3 * R.std(ddof=1) / np.sqrt(50)


def test_gaussian_bernoulli_ais():
    r = _model(5, 8, 0.4, seed=4, cls=GaussianBernoulliRBM, sigma=0.7)
    exact = r.log_partition("exact").log_z
    a = r.log_partition("ais", n_runs=100, betas=500, seed=0)
    assert abs(a.log_z - exact) < 3 * a.stderr, (a, exact)


def test_generic_ais_on_gaussians():
    # f_beta(x) = exp(-x^2 (1 + 3 beta) / 2), exact transitions: log Z_1 = log sqrt(2 pi / 4)
    rng = np.random.default_rng(0)

    def log_f(x, beta):
        return -0.5 * x**2 * (1 + 3 * beta)

    def transition(x, beta):
        return rng.normal(size=x.shape) / np.sqrt(1 + 3 * beta)

    x0 = rng.normal(size=2000)
    est = ais.ais(x0, np.linspace(0, 1, 50), transition, 0.5 * np.log(2 * np.pi), log_f=log_f)
    assert abs(est.log_z - 0.5 * np.log(2 * np.pi / 4)) < 3 * est.stderr + 1e-12
    back = ais.reverse_ais(
        rng.normal(size=2000) / 2, np.linspace(0, 1, 50), transition, 0.5 * np.log(2 * np.pi), log_f=log_f
    )
    assert abs(back.log_z - 0.5 * np.log(2 * np.pi / 4)) < 3 * back.stderr + 1e-12


def test_schedule_and_errors():
    b = ais.salakhutdinov_betas()
    assert b.size == 14_501 and b[0] == 0 and b[-1] == 1 and np.all(np.diff(b) > 0)
    steps = np.diff(b)
    assert (
        np.allclose(steps[:500], 1e-3)
        and np.allclose(steps[500:4500], 1e-4)
        and np.allclose(steps[4500:], 1e-5)
    )
    r = _model(4, 3, 1.0, seed=0)
    with pytest.raises(ValueError, match="'betas'"):
        r.log_partition("ais", betas=[0.5, 1.0])
    with pytest.raises(ValueError, match="'betas'"):
        r.log_partition("ais", betas="fast")
    with pytest.raises(ValueError, match="'n_runs'"):
        r.log_partition("ais", n_runs=0)
    with pytest.raises(ValueError, match="'base'"):
        r.log_partition("ais", base=np.zeros(5))
    with pytest.raises(ValueError, match="'start': X has 5 features"):
        r.log_partition("raise", start=np.zeros((3, 5)))


if __name__ == "__main__":  # python tests/test_ais.py [betas]: the figures behind the assertions
    import sys

    betas = sys.argv[1] if len(sys.argv) > 1 else "salakhutdinov"
    betas = betas if betas == "salakhutdinov" else int(betas)
    print(f"schedule {betas}, 100 runs; RAISE from 100 exact samples of the model")
    print(f"{'nv':>3s} {'nh':>3s} {'scale':>5s} {'exact':>10s} {'AIS':>10s} {'se':>7s} {'ESS':>6s} {'z':>6s} "
          f"{'RAISE':>10s} {'se':>7s} {'ESS':>6s} {'z':>6s}  bracket")  # fmt: skip
    for nv, nh, scale in MODELS:
        r = _model(nv, nh, scale, seed=1)
        exact = r.log_partition("exact").log_z
        a = r.log_partition("ais", n_runs=100, betas=betas, seed=0)
        V, p = _visible_probs(r)
        start = V[np.random.default_rng(1).choice(p.size, 100, p=p)]
        rr = r.log_partition("raise", start=start, betas=betas, seed=0)
        ok = a.log_z - 3 * a.stderr <= exact <= rr.log_z + 3 * rr.stderr
        print(f"{nv:3d} {nh:3d} {scale:5.1f} {exact:10.4f} {a.log_z:10.4f} {a.stderr:7.4f} {a.ess:6.1f} "
              f"{(a.log_z - exact) / a.stderr:6.2f} {rr.log_z:10.4f} {rr.stderr:7.4f} {rr.ess:6.1f} "
              f"{(rr.log_z - exact) / rr.stderr:6.2f}  {'yes' if ok else 'NO'}")  # fmt: skip
    print("short schedule (5 betas, 5 runs), mean of 50 repeats +- its standard error:")
    for nv, nh in ((10, 16), (12, 12)):
        r = _model(nv, nh, 3.0, seed=2)
        exact = r.log_partition("exact").log_z
        V, p = _visible_probs(r)
        rng = np.random.default_rng(0)
        A = np.array([r.log_partition("ais", n_runs=5, betas=5, seed=i).log_z for i in range(50)])
        R = np.array([r.log_partition("raise", start=V[rng.choice(p.size, 5, p=p)], betas=5, seed=i).log_z
                      for i in range(50)])  # fmt: skip
        print(f"  {nv}x{nh}: AIS {A.mean():.3f} +- {A.std(ddof=1) / np.sqrt(50):.3f} < exact {exact:.3f} < "
              f"RAISE {R.mean():.3f} +- {R.std(ddof=1) / np.sqrt(50):.3f}")  # fmt: skip
