"""BernoulliRBM / GaussianBernoulliRBM against exact oracles: Gibbs and
parallel-tempering samples of small models against the distribution
enumerated by brute force (total variation within a bound set by the sample
count), exact log-likelihoods, training quality against scikit-learn, the
scikit-learn estimator contract, and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from heatbath.ebm import BernoulliRBM, GaussianBernoulliRBM, ParallelTempering
from heatbath.ebm.rbm import NotFittedError


def _bits(m):
    idx = np.arange(2**m)
    return ((idx[:, None] >> np.arange(m)) & 1).astype(np.float64)


def _model(nv, nh, scale, seed, dtype="float64", cls=BernoulliRBM, **kw):
    rng = np.random.default_rng(seed)
    r = cls(n_components=nh, random_state=seed, dtype=dtype, **kw)
    r.components_ = rng.normal(0, scale, (nh, nv)).astype(dtype)
    r.intercept_hidden_ = rng.normal(0, 1, nh).astype(dtype)
    r.intercept_visible_ = rng.normal(0, 1, nv).astype(dtype)
    r.n_features_in_ = nv
    return r


def _exact_visible(r):
    """p(v) over all 2^nv states by brute-force enumeration of the joint (v, h)."""
    W = np.asarray(r.components_, np.float64)
    c = np.asarray(r.intercept_hidden_, np.float64)
    b = np.asarray(r.intercept_visible_, np.float64)
    nh, nv = W.shape
    V, H = _bits(nv), _bits(nh)
    neg_e = (V @ b)[:, None] + (H @ c)[None, :] + V @ W.T @ H.T  # -E(v, h)
    lp = np.log(np.exp(neg_e - neg_e.max()).sum(axis=1)) + neg_e.max()
    p = np.exp(lp - lp.max())
    return p / p.sum()


def _gibbs_matrix(r):
    """Exact one-sweep transition matrix T[v, v'] = sum_h p(h|v) p(v'|h)."""
    W = np.asarray(r.components_, np.float64)
    c = np.asarray(r.intercept_hidden_, np.float64)
    b = np.asarray(r.intercept_visible_, np.float64)
    nh, nv = W.shape
    V, H = _bits(nv), _bits(nh)
    ph = 1 / (1 + np.exp(-(V @ W.T + c)))  # (V, nh)
    p_h_given_v = np.prod(np.where(H[None] == 1, ph[:, None], 1 - ph[:, None]), axis=2)  # (V, H)
    pv = 1 / (1 + np.exp(-(H @ W + b)))  # (H, nv)
    p_v_given_h = np.prod(np.where(V[None] == 1, pv[:, None], 1 - pv[:, None]), axis=2)  # (H, V)
    return p_h_given_v @ p_v_given_h


def _index(samples):
    s = np.asarray(samples).astype(np.int64)
    return s @ (1 << np.arange(s.shape[1]))


def _tv_bound(p, n, delta=1e-6):
    """E[TV] <= 1/2 sum sqrt(p (1 - p) / n) (Jensen per state); TV of n iid
    samples has bounded differences 1/n, so by McDiarmid
    P(TV > E[TV] + t) <= exp(-2 n t^2): t = sqrt(log(1/delta) / (2 n))."""
    return 0.5 * np.sum(np.sqrt(p * (1 - p) / n)) + np.sqrt(np.log(1 / delta) / (2 * n))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_gibbs_samples_match_exact_distribution(dtype, scale):
    r = _model(7, 5, scale, seed=3, dtype=dtype)
    p = _exact_visible(r)
    n, k = 20_000, 40
    # the exact distance from equilibrium after k sweeps from sample()'s start
    b = np.asarray(r.intercept_visible_, np.float64)
    pb = 1 / (1 + np.exp(-b))
    V = _bits(7)
    p0 = np.prod(np.where(V == 1, pb, 1 - pb), axis=1)
    mix = 0.5 * np.abs(p0 @ np.linalg.matrix_power(_gibbs_matrix(r), k) - p).sum()
    assert mix < 1e-3
    s = r.sample(n, k=k)
    assert s.shape == (n, 7) and s.dtype == np.dtype(dtype)
    q = np.bincount(_index(s), minlength=p.size) / n
    tv = 0.5 * np.abs(q - p).sum()
    assert tv < _tv_bound(p, n) + mix, (tv, _tv_bound(p, n))


def test_gibbs_method_follows_transition_matrix():
    # gibbs(v, k) from a fixed state: the empirical law against row v of T^k
    r = _model(6, 4, 1.0, seed=4)
    T = _gibbs_matrix(r)
    v0 = np.array([[1, 0, 1, 1, 0, 0]], dtype=np.float64)
    n = 40_000
    for k in (1, 3):
        out = r.gibbs(np.repeat(v0, n, axis=0), k=k)
        q = np.bincount(_index(out), minlength=64) / n
        p = np.linalg.matrix_power(T, k)[_index(v0)[0]]
        assert 0.5 * np.abs(q - p).sum() < _tv_bound(p, n)


def test_parallel_tempering_matches_exact_distribution():
    # strongly coupled: single-site Gibbs mixes slowly, tempering exchanges help
    r = _model(7, 5, 2.5, seed=5)
    p = _exact_visible(r)
    pt = ParallelTempering(r, n_chains=5_000, n_temperatures=6, beta_min=0.05)
    pt.run(60)
    s = pt.samples()
    assert s.shape == (5_000, 7)
    assert np.all(pt.acceptance > 0.05)
    q = np.bincount(_index(s), minlength=p.size) / s.shape[0]
    assert 0.5 * np.abs(q - p).sum() < _tv_bound(p, s.shape[0]) + 5e-3


def test_gaussian_rbm_exact_log_z_and_samples():
    from scipy.stats import multivariate_normal

    r = _model(2, 3, 0.7, seed=6, cls=GaussianBernoulliRBM, sigma=np.array([0.8, 1.3]))
    W, c, b, s = r.components_, r.intercept_hidden_, r.intercept_visible_, np.array([0.8, 1.3])
    # oracle: numerical integration of exp(-F(v)) on a grid
    g = np.linspace(-14, 14, 1401)
    VV = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    neg_f = -(((VV - b) / s) ** 2).sum(1) / 2 + np.logaddexp(0, (VV / s) @ W.T + c).sum(1)
    log_z_grid = np.log(np.exp(neg_f - neg_f.max()).sum() * (g[1] - g[0]) ** 2) + neg_f.max()
    est = r.log_partition("exact")
    assert abs(est.log_z - log_z_grid) < 1e-6
    # free energy and log-likelihood agree with the oracle
    np.testing.assert_allclose(-r.free_energy(VV[:5]), neg_f[:5], rtol=1e-12)
    # samples: mixture of Gaussians over h; compare the mean and covariance
    H = _bits(3)
    u = H @ W
    lw = H @ c + (u * (b / s) + 0.5 * u * u).sum(1)
    pi = np.exp(lw - lw.max())
    pi /= pi.sum()
    means = b + s * u
    mean = pi @ means
    cov = np.diag(s**2) + (pi[:, None, None] * np.einsum("hi,hj->hij", means - mean, means - mean)).sum(0)
    n = 20_000
    x = r.sample(n, k=60)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se)
    assert np.allclose(np.cov(x.T), cov, atol=0.05 * np.abs(cov).max())
    # the density at a point: mixture formula vs the model's log-likelihood
    v = np.array([[0.3, -0.4]])
    dens = sum(pi[h] * multivariate_normal(means[h], np.diag(s**2)).pdf(v[0]) for h in range(8))
    assert abs(r.log_likelihood(v, method="exact")[0] - np.log(dens)) < 1e-9


@pytest.mark.parametrize("kw", [{}, {"persistent": False}, {"momentum": 0.5}])
def test_gaussian_rbm_training_improves_exact_likelihood(kw):
    rng = np.random.default_rng(0)
    centers = np.array([[2, 0, 0], [-2, 1, 0], [0, -2, 1.5]])
    X = (centers[rng.integers(0, 3, 1500)] + rng.normal(size=(1500, 3)) * 0.5).astype(np.float32)
    common = {"n_components": 6, "random_state": 0, "sigma": 0.5}
    init = GaussianBernoulliRBM(n_iter=1, learning_rate=1e-9, **common).fit(X)
    g = GaussianBernoulliRBM(n_iter=20, learning_rate=0.01, **common, **kw).fit(X)
    assert g.log_likelihood(X, method="exact").mean() > init.log_likelihood(X, method="exact").mean() + 3.0
    a = g.log_partition("ais", n_runs=100, betas=500, seed=0)
    assert abs(a.log_z - g.log_partition("exact").log_z) < 3 * a.stderr


def _exact_log_lik(r, X):
    W = np.asarray(r.components_, np.float64)
    c = np.asarray(r.intercept_hidden_, np.float64)
    b = np.asarray(r.intercept_visible_, np.float64)
    H = _bits(W.shape[0])
    lf = H @ c + np.logaddexp(0, H @ W + b).sum(1)
    log_z = lf.max() + np.log(np.exp(lf - lf.max()).sum())
    return (X @ b + np.logaddexp(0, X @ W.T + c).sum(1) - log_z).mean()


def test_digits_better_than_sklearn_exact_likelihood():
    sk_rbm = pytest.importorskip("sklearn.neural_network")
    from heatbath.data import binarized_digits

    d = binarized_digits()
    nh, epochs = 16, 10
    # the command's defaults (PCD-3); over seeds 0..4 they reach -20.4 .. -20.8 nats, scikit-learn -24.1
    hb = BernoulliRBM(
        n_components=nh, n_iter=epochs, k=3, learning_rate=0.03, momentum=0.5, weight_decay=1e-4,
        random_state=0,
    ).fit(d.X_train)  # fmt: skip
    sk = sk_rbm.BernoulliRBM(n_components=nh, n_iter=epochs, random_state=0).fit(d.X_train.astype(np.float64))
    ll_hb = _exact_log_lik(hb, d.X_test)
    ll_sk = _exact_log_lik(sk, d.X_test)
    assert ll_hb > ll_sk + 2.0, (ll_hb, ll_sk)
    # the model's own exact log-likelihood agrees with the oracle
    assert abs(hb.log_likelihood(d.X_test, method="exact").mean() - ll_hb) < 1e-3


@pytest.mark.parametrize(
    "kw",
    [
        dict(persistent=False, k=2),
        dict(persistent=True, k=1),
        dict(persistent=True, n_temperatures=4),
        dict(momentum=0.5, weight_decay=1e-4, learning_rate=0.05),
    ],
)
def test_training_improves_exact_likelihood_and_is_reproducible(kw):
    rng = np.random.default_rng(0)
    protos = (rng.random((3, 10)) < 0.5).astype(np.float32)
    X = protos[rng.integers(0, 3, 600)]
    X = np.abs(X - (rng.random(X.shape) < 0.05)).astype(np.float32)
    kw = {"learning_rate": 0.1, **kw}
    r = BernoulliRBM(n_components=6, n_iter=30, random_state=1, **kw)
    r.fit(X)
    base = _exact_log_lik(
        BernoulliRBM(n_components=6, random_state=1, n_iter=1, learning_rate=1e-9).fit(X), X
    )
    ll = _exact_log_lik(r, X)
    assert ll > base + 0.5  # from -4.69 nats (the base rates) towards the data entropy, 3.09 nats
    r2 = BernoulliRBM(n_components=6, n_iter=30, random_state=1, **kw).fit(X)
    np.testing.assert_array_equal(r.components_, r2.components_)


def test_partial_fit_transform_score_and_pickle():
    rng = np.random.default_rng(1)
    X = (rng.random((50, 8)) < 0.4).astype(np.float64)
    r = BernoulliRBM(n_components=4, random_state=0, batch_size=10)
    for i in range(5):
        r.partial_fit(X[i * 10 : (i + 1) * 10])
    assert r.components_.shape == (4, 8) and r.h_samples_.shape == (10, 4)
    t = r.transform(X)
    W, c = r.components_.astype(np.float64), r.intercept_hidden_.astype(np.float64)
    np.testing.assert_allclose(t, 1 / (1 + np.exp(-(X @ W.T + c))), atol=1e-6)
    ps = r.score_samples(X)
    assert ps.shape == (50,) and np.all(ps <= 0)
    np.testing.assert_array_equal(ps, r.score_samples(X))  # deterministic with an int random_state
    r2 = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(r2.transform(X), t)


def test_sklearn_check_estimator():
    pytest.importorskip("sklearn", minversion="1.6")  # expected_failed_checks, on_skip
    from sklearn.utils.estimator_checks import check_estimator

    reason = "score_samples flips one random feature per sample (as scikit-learn's BernoulliRBM)"
    check_estimator(
        BernoulliRBM(n_components=3, n_iter=3, random_state=0),
        expected_failed_checks={
            "check_methods_subset_invariance": reason,
            "check_methods_sample_order_invariance": reason,
        },
        on_skip=None,
    )


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(2)
    X = (rng.random((20, 5)) < 0.5).astype(np.float32)
    r = BernoulliRBM(n_components=3, n_iter=2, random_state=0)
    with pytest.raises(NotFittedError):
        r.transform(X)
    r.fit(X)
    with pytest.raises(ValueError, match="'X': X has 4 features, but BernoulliRBM is expecting 5"):
        r.transform(X[:, :4])
    with pytest.raises(ValueError, match="'v': X has 6 features"):
        r.gibbs(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="'X':.*NaN"):
        Xn = X.copy()
        Xn[3, 2] = np.nan
        r.partial_fit(Xn)
    with pytest.raises(ValueError, match="'X':.*NaN or infinity"):
        BernoulliRBM(n_components=2).fit(np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="'X': empty batch"):
        r.partial_fit(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="'X': empty batch"):
        BernoulliRBM().fit(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="'X': the Bernoulli model's likelihood needs binary data"):
        r.log_likelihood(X * 0.5, log_z=0.0)
    with pytest.raises(ValueError, match="'X': Expected 2D array"):
        r.transform(X[0])
    with pytest.raises(TypeError, match="'X': sparse"):
        import scipy.sparse

        r.transform(scipy.sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="'n_components'"):
        BernoulliRBM(n_components=0).fit(X)
    with pytest.raises(ValueError, match="'momentum'"):
        BernoulliRBM(momentum=1.5).fit(X)
    with pytest.raises(ValueError, match="'n_temperatures'"):
        BernoulliRBM(n_temperatures=3, persistent=False).fit(X)
    with pytest.raises(ValueError, match="'method'"):
        r.log_partition("magic")
    with pytest.raises(ValueError, match="'rbm': exact enumeration"):
        _model(30, 30, 1.0, 0).log_partition("exact")
    with pytest.raises(ValueError, match="'k'"):
        r.gibbs(X, k=0)
    with pytest.raises(ValueError, match="'sigma'"):
        GaussianBernoulliRBM(n_components=2, sigma=np.ones(3)).fit(X)


@pytest.mark.gpu
def test_gpu_fit_and_gibbs_match_distribution():
    import cupy as cp

    r = _model(7, 5, 1.0, seed=3, dtype="float32")
    p = _exact_visible(r)
    r.components_ = cp.asarray(r.components_)
    r.intercept_hidden_ = cp.asarray(r.intercept_hidden_)
    r.intercept_visible_ = cp.asarray(r.intercept_visible_)
    n = 40_000
    s = r.sample(n, k=60)
    assert isinstance(s, cp.ndarray)
    q = np.bincount(_index(s.get()), minlength=p.size) / n
    assert 0.5 * np.abs(q - p).sum() < _tv_bound(p, n) + 1e-3
    X = cp.asarray((np.random.default_rng(0).random((200, 7)) < 0.5).astype(np.float32))
    g = BernoulliRBM(n_components=5, n_iter=3, random_state=0).fit(X)
    assert isinstance(g.components_, cp.ndarray)
    c = BernoulliRBM(n_components=5, n_iter=3, random_state=0).fit(X.get())
    np.testing.assert_allclose(g.components_.get(), c.components_, atol=1e-4)


def test_train_command_prints_test_log_likelihood(capsys):
    pytest.importorskip("sklearn")
    from heatbath.cli import main
    from heatbath.commands import train

    assert "rbm-digits" in train.TRAINERS
    rc = main(["train", "rbm-digits", "--epochs", "2", "--n-components", "16", "--ais-runs", "10",
               "--ais-betas", "100", "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("test log-likelihood: ") and last.endswith(" nats")
    assert -64 * np.log(2) < float(last.split()[2]) < 0


if __name__ == "__main__":  # python tests/test_rbm.py: the figures behind the sampling assertions
    for dtype in ("float64", "float32"):
        for scale in (0.5, 1.5):
            r = _model(7, 5, scale, seed=3, dtype=dtype)
            p = _exact_visible(r)
            n = 20_000
            q = np.bincount(_index(r.sample(n, k=40)), minlength=p.size) / n
            tv = 0.5 * np.abs(q - p).sum()
            print(f"Gibbs {dtype} scale {scale}: TV {tv:.4f}, bound {_tv_bound(p, n):.4f} "
                  f"(n = {n} independent chains, 40 sweeps)")  # fmt: skip
    r = _model(7, 5, 2.5, seed=5)
    p = _exact_visible(r)
    pt = ParallelTempering(r, n_chains=5_000, n_temperatures=6, beta_min=0.05).run(60)
    q = np.bincount(_index(pt.samples()), minlength=p.size) / 5_000
    print(f"PT scale 2.5: TV {0.5 * np.abs(q - p).sum():.4f}, bound {_tv_bound(p, 5_000) + 5e-3:.4f}, "
          f"exchange acceptance {np.round(pt.acceptance, 2)}")  # fmt: skip


def test_works_without_scikit_learn():
    # scikit-learn is optional: the estimator falls back to its own get_params / set_params
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import numpy as np\n"
        "from heatbath.ebm import BernoulliRBM\n"
        "X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(np.float32)\n"
        "r = BernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(X)\n"
        "assert r.get_params()['n_components'] == 3 and r.set_params(k=2).k == 2\n"
        "assert r.fit_transform(X).shape == (40, 3)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
