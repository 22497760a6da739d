"""heatbath.evaluation against exact answers: population MMD^2 and energy
distance of product-Bernoulli distributions by enumeration of all states,
scipy's energy distance in one dimension, and hand-made marginals and class
histograms. Statistical tolerances are multiples of the standard error of the
quantity compared (4 sigma: a false alarm about once in 16,000 runs; the
seeds are fixed, so a run is reproducible)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from heatbath import evaluation as ev

Z = 4.0  # tolerance in standard errors


def _states(d: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.float64)


def _product_probs(states: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.prod(np.where(states == 1, p, 1 - p), axis=1)


def _exact(p: np.ndarray, q: np.ndarray, h) -> float:
    """sum P P' h + sum Q Q' h - 2 sum P Q h over all pairs of states."""
    s = _states(p.shape[0])
    hm = h(((s[:, None, :] - s[None, :, :]) ** 2).sum(-1))
    pp, qq = _product_probs(s, p), _product_probs(s, q)
    return float(pp @ hm @ pp + qq @ hm @ qq - 2 * pp @ hm @ qq)


def _draw(rng, p: np.ndarray, n: int) -> np.ndarray:
    return (rng.random((n, p.shape[0])) < p).astype(np.uint8)


P6 = np.array([0.1, 0.3, 0.5, 0.7, 0.9, 0.5])
Q6 = np.array([0.2, 0.3, 0.4, 0.7, 0.8, 0.6])
BW = 1.3


def _gauss(bw):
    return lambda d: np.exp(-d / (2 * bw * bw))


def test_mmd_matches_enumeration_single_run():
    exact = _exact(P6, Q6, _gauss(BW))
    assert exact > 0
    rng = np.random.default_rng(1)
    est = ev.mmd(_draw(rng, P6, 600), _draw(rng, Q6, 500), bandwidth=BW, return_stderr=True)
    assert abs(est.value - exact) < Z * est.stderr, (est, exact)
    assert est.stderr < exact  # the difference is resolved


def test_mmd_unbiased_and_stderr_calibrated():
    """Mean over repeats equals the exact MMD^2 (even at n = 15, where the
    V-statistic is biased by several standard errors), and the jackknife
    standard error matches the spread of the estimates."""
    exact = _exact(P6, Q6, _gauss(BW))
    rng = np.random.default_rng(2)
    reps, m, n = 400, 15, 12
    vals, ses = np.empty(reps), np.empty(reps)
    for r in range(reps):
        e = ev.mmd(_draw(rng, P6, m), _draw(rng, Q6, n), bandwidth=BW, return_stderr=True)
        vals[r], ses[r] = e
    sem = vals.std(ddof=1) / math.sqrt(reps)
    assert abs(vals.mean() - exact) < Z * sem, (vals.mean(), exact, sem)
    # the biased V-statistic's offset (1 - E k(x,x'))/m + (1 - E k(y,y'))/n would be detected
    s = _states(6)
    km = _gauss(BW)(((s[:, None] - s[None]) ** 2).sum(-1))
    pp, qq = _product_probs(s, P6), _product_probs(s, Q6)
    v_bias = (1 - pp @ km @ pp) / m + (1 - qq @ km @ qq) / n
    assert v_bias > 2 * Z * sem
    # jackknife standard error vs the observed spread, at a larger n: the spread's own error is
    # 1/sqrt(2 * 199) = 5%, and the jackknife overestimates a little (Efron-Stein; 2-15% over seeds)
    reps, m, n = 200, 120, 100
    vals, ses = np.empty(reps), np.empty(reps)
    for r in range(reps):
        vals[r], ses[r] = ev.mmd(_draw(rng, P6, m), _draw(rng, Q6, n), bandwidth=BW, return_stderr=True)
    ratio = ses.mean() / vals.std(ddof=1)
    assert 0.85 < ratio < 1.35, ratio


def test_mmd_same_distribution_is_zero():
    rng = np.random.default_rng(3)
    reps = 300
    vals, ses = np.empty(reps), np.empty(reps)
    for r in range(reps):
        vals[r], ses[r] = ev.mmd(_draw(rng, P6, 40), _draw(rng, P6, 50), bandwidth=BW, return_stderr=True)
    assert abs(vals.mean()) < Z * vals.std(ddof=1) / math.sqrt(reps)
    # within its standard error: the jackknife is conservative under the null
    assert np.mean(np.abs(vals) < 2 * ses) > 0.93  # 0.97-0.98 over seeds
    assert ses.mean() >= 0.9 * vals.std(ddof=1)
    # default bandwidth (median heuristic of the pooled sample), larger samples
    x, y = _draw(rng, P6, 500), _draw(rng, P6, 400)
    v, se = ev.mmd(x, y, return_stderr=True)
    assert abs(v) < Z * se


def test_mmd_real_vectors_and_chunks():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70, 5))
    y = rng.normal(size=(55, 5)) + 0.3
    # the U-statistic written out with a dense kernel matrix
    bw = 1.7

    def k(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * bw * bw))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    ref = (kxx.sum() - m) / (m * (m - 1)) + (kyy.sum() - n) / (n * (n - 1)) - 2 * kxy.mean()
    a = ev.mmd(x, y, bandwidth=bw, return_stderr=True)
    b = ev.mmd(x, y, bandwidth=bw, return_stderr=True, chunk=3)
    assert a.value == pytest.approx(ref, rel=1e-12, abs=1e-14)
    assert b.value == pytest.approx(a.value, rel=1e-12, abs=1e-14)
    assert b.stderr == pytest.approx(a.stderr, rel=1e-10)

    # the jackknife written out by deleting each point in turn
    def u(xx, yy):
        return ev.mmd(xx, yy, bandwidth=bw)

    tx = np.array([u(np.delete(x, i, 0), y) for i in range(m)])
    ty = np.array([u(x, np.delete(y, j, 0)) for j in range(n)])
    var = (m - 1) / m * ((tx - tx.mean()) ** 2).sum() + (n - 1) / n * ((ty - ty.mean()) ** 2).sum()
    assert a.stderr == pytest.approx(math.sqrt(var), rel=1e-9)
    # bool and int inputs agree with float
    bx, by = x > 0, y > 0
    assert ev.mmd(bx, by, bandwidth=1.0) == pytest.approx(
        ev.mmd(bx.astype(float), by.astype(np.int8), bandwidth=1.0)
    )


def test_median_heuristic():
    assert ev.median_heuristic(np.array([[0.0], [1.0], [3.0]])) == pytest.approx(2.0)
    # Hamming distances 1, 2, 1 -> Euclidean 1, sqrt 2, 1 -> median 1
    x = np.array([[0, 0], [1, 0]])
    assert ev.median_heuristic(x, np.array([[1, 1]])) == pytest.approx(1.0)
    assert ev.median_heuristic(np.zeros((5, 3))) == 1.0
    big = np.random.default_rng(5).integers(0, 2, size=(1500, 8))
    assert ev.median_heuristic(big, max_points=500) == ev.median_heuristic(
        big, max_points=500
    )  # fixed subset
    assert ev.median_heuristic(big, max_points=500) == pytest.approx(2.0)  # Hamming median 4 of 8 bits


P4 = np.array([0.2, 0.5, 0.8, 0.4])
Q4 = np.array([0.5, 0.5, 0.6, 0.1])


def test_energy_distance_vs_scipy_1d():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(6)
    u, v = rng.normal(size=37), rng.standard_t(3, size=23) + 0.4
    ref = stats.energy_distance(u, v) ** 2  # scipy: sqrt of the V-statistic
    got = ev.energy_distance(u[:, None], v[:, None], unbiased=False)
    assert got == pytest.approx(ref, rel=1e-10)
    # U- and V-statistics differ only in the within terms: V_xx = (m-1)/m U_xx
    m, n = len(u), len(v)
    uxx = np.abs(u[:, None] - u[None]).sum() / (m * (m - 1))
    uyy = np.abs(v[:, None] - v[None]).sum() / (n * (n - 1))
    got_u = ev.energy_distance(u[:, None], v[:, None])
    assert got_u == pytest.approx(ref - uxx / m - uyy / n, rel=1e-10)
    with pytest.raises(ValueError, match="'x'.*2-D"):
        ev.energy_distance(u, v)


def test_energy_distance_matches_enumeration():
    exact = _exact(P4, Q4, lambda d: -np.sqrt(d))  # the MMD form with h = -|x - y|
    assert exact > 0
    rng = np.random.default_rng(7)
    reps, m, n = 300, 10, 14
    vals = np.array([ev.energy_distance(_draw(rng, P4, m), _draw(rng, Q4, n)) for _ in range(reps)])
    assert abs(vals.mean() - exact) < Z * vals.std(ddof=1) / math.sqrt(reps)
    est = ev.energy_distance(_draw(rng, P4, 800), _draw(rng, Q4, 700), return_stderr=True)
    assert abs(est.value - exact) < Z * est.stderr
    same = ev.energy_distance(_draw(rng, P4, 300), _draw(rng, P4, 300), return_stderr=True)
    assert abs(same.value) < Z * same.stderr
    x = _draw(rng, P4, 50)
    assert ev.energy_distance(x, x, unbiased=False) == pytest.approx(0.0, abs=1e-12)
    assert ev.energy_distance(x, x[::-1], chunk=4) == pytest.approx(ev.energy_distance(x, x), rel=1e-12)


def test_marginal_error_exact():
    s = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]])  # P = 1, 1/4, 1/4
    r = np.array([[0, 0, 1], [1, 0, 1]])  # P = 1/2, 0, 1
    me = ev.marginal_error(s, r)
    assert me.mean == pytest.approx((0.5 + 0.25 + 0.75) / 3)
    assert me.max == pytest.approx(0.75)
    assert ev.marginal_error(r, r) == (0.0, 0.0)


def test_class_entropy_exact():
    protos = np.eye(10, 12)  # ten prototypes, two padding pixels
    labels = np.arange(10) * 3 + 1  # any label values
    s = np.repeat(protos, 7, axis=0)
    ce = ev.class_entropy(s, protos, labels)
    assert ce.entropy == pytest.approx(math.log(10), rel=1e-12)
    np.testing.assert_array_equal(ce.counts, np.full(10, 7))
    np.testing.assert_array_equal(ce.classes, labels)
    one = ev.class_entropy(np.repeat(protos[[4]], 5, axis=0), protos, labels)
    assert one.entropy == 0.0
    np.testing.assert_array_equal(one.counts, np.eye(10, dtype=np.int64)[4] * 5)
    # nearest neighbour by Hamming distance: one flipped bit keeps the class
    noisy = protos.copy()
    noisy[:, 11] = 1
    ce = ev.class_entropy(noisy[[0, 0, 1, 2]], protos, labels)
    assert ce.entropy == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    # several labelled points of one class; ties go to the first
    lx = np.array([[0, 0], [0, 1], [1, 1]])
    ce = ev.class_entropy(np.array([[1, 0]]), lx, ["a", "b", "b"])
    np.testing.assert_array_equal(ce.counts, [1, 0])  # [1,0] is at distance 1 from [0,0] and [1,1]
    assert list(ce.classes) == ["a", "b"]


def test_nearest_neighbour_ties_to_first():
    lx = np.array([[0, 0], [1, 1], [0, 1]])
    idx, d = ev.nearest_neighbour(np.array([[1, 0], [0, 1]]), lx, chunk=1)
    np.testing.assert_array_equal(idx, [0, 2])  # [1,0]: distance 1 to rows 0 and 1 -> row 0
    np.testing.assert_array_equal(d, [1, 0])


def test_sample_quality_structure():
    rng = np.random.default_rng(8)
    a, b = np.full(6, 0.85), np.full(6, 0.15)  # two modes
    train = np.concatenate([_draw(rng, a, 200), _draw(rng, b, 200)])
    labels = np.repeat([0, 1], 200)
    test = np.concatenate([_draw(rng, a, 100), _draw(rng, b, 100)])
    samples = _draw(rng, a, 150)  # covers only one of them
    q = ev.sample_quality(samples, train, test, labels)
    assert q["bandwidth"] == ev.median_heuristic(test)
    assert q["n"] == 150 and q["floor"]["n"] == 150
    np.testing.assert_array_equal(q["classes"], [0, 1])
    assert q["mmd"] > q["floor"]["mmd"] + Z * q["mmd_stderr"]
    assert q["energy"] > q["floor"]["energy"] + Z * q["energy_stderr"]
    assert abs(q["floor"]["mmd"]) < Z * q["floor"]["mmd_stderr"]
    assert q["marginal_mean"] > q["floor"]["marginal_mean"]
    assert q["floor"]["class_counts"].sum() == 150
    assert q["class_entropy"] < q["floor"]["class_entropy"]
    assert q["mmd"] == pytest.approx(ev.mmd(samples, test, bandwidth=q["bandwidth"]))
    # more samples than training points: the floor uses all of train
    q = ev.sample_quality(_draw(rng, a, 500), train, test, labels, bandwidth=2.0, seed=3)
    assert q["floor"]["n"] == 400 and q["bandwidth"] == 2.0
    text = ev.format_quality({"model": q})
    assert "train vs test (floor)" in text and "model" in text


def test_bad_input():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="'y'.*4 features.*'x' has 3"):
        ev.mmd(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="'x'.*at least 2"):
        ev.mmd(np.zeros((0, 3)), x)
    with pytest.raises(ValueError, match="'y'.*at least 2"):
        ev.energy_distance(x, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="'x'.*0 features"):
        ev.mmd(np.zeros((4, 0)), np.zeros((4, 0)))
    with pytest.raises(ValueError, match="'y'.*NaN"):
        ev.mmd(x, np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="'x'.*NaN"):
        ev.energy_distance(np.full((5, 3), np.inf), x)
    with pytest.raises(TypeError, match="'x'"):
        ev.mmd("abc", x)
    with pytest.raises(TypeError, match="'y'"):
        ev.mmd(x, None)
    with pytest.raises(TypeError, match="'x'.*dtype"):
        ev.mmd(np.array([["a", "b"], ["c", "d"]]), x)
    with pytest.raises(TypeError, match="'x'"):
        ev.mmd(x.astype(complex), x)
    with pytest.raises(ValueError, match="'kernel'"):
        ev.mmd(x, x, kernel="laplace")
    with pytest.raises(ValueError, match="'bandwidth'"):
        ev.mmd(x, x, bandwidth=0)
    with pytest.raises(TypeError, match="'bandwidth'"):
        ev.mmd(x, x, bandwidth="wide")
    with pytest.raises(ValueError, match="'chunk'"):
        ev.mmd(x, x, chunk=0)
    with pytest.raises(ValueError, match="'reference'.*2 features"):
        ev.marginal_error(x, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'samples'"):
        ev.marginal_error(np.zeros((0, 3)), x)
    with pytest.raises(ValueError, match="'labels'.*shape"):
        ev.class_entropy(x, x, np.zeros(4))
    with pytest.raises(TypeError, match="'labels'"):
        ev.class_entropy(x, x, None)
    with pytest.raises(ValueError, match="'labelled_x'"):
        ev.class_entropy(x, np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="'test'.*features"):
        ev.sample_quality(x, x, np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="'train_labels'"):
        ev.sample_quality(x, x, x, np.zeros(3))
    with pytest.raises(ValueError, match="'name'"):
        ev.baseline_samples("gan", x, 3)
    with pytest.raises(ValueError, match="'train'.*binary"):
        ev.baseline_samples("rbm", x + 0.5, 3)
    with pytest.raises(ValueError, match="'params'.*sweep"):
        ev.baseline_samples("rbm", x, 3, sweep=3)
    with pytest.raises(TypeError, match="'n'"):
        ev.baseline_samples("rbm", x, 2.5)


@pytest.mark.parametrize(
    "name, params",
    [
        ("rbm", {"n_components": 8, "n_iter": 2, "sweeps": 20}),
        ("binomial", {"T": 5, "steps": 20, "hidden": 16}),
    ],
)
def test_baseline_samples_smoke(name, params):
    from heatbath.data import binarized_digits

    d = binarized_digits()
    s = ev.baseline_samples(name, d.X_train[:200], 30, seed=1, **params)
    assert s.shape == (30, 64) and s.dtype == np.uint8
    assert set(np.unique(s)) <= {0, 1}
    again = ev.baseline_samples(name, d.X_train[:200], 30, seed=1, **params)
    np.testing.assert_array_equal(s, again)  # seeded end to end
