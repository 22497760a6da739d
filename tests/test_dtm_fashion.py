"""The Fashion-MNIST experiment's parts: the data loader on tiny IDX files the
test writes (and its message when the data are missing), label bits, the
forward process with a rate per column, class-conditional reverse steps
against exact enumeration, the classifier and its Frechet distance against
closed forms, and ``heatbath train dtm-fashion`` end to end on a tiny budget."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from heatbath.classifier import MLPClassifier, conditional_accuracy, frechet_distance
from heatbath.cli import main
from heatbath.data import idx
from heatbath.data.fashion import fashion_mnist, find_fashion_mnist
from heatbath.dtm import forward_coupling
from heatbath.dtm.labelled import (
    LabelledDTM,
    LabelledMEBM,
    MixedRateForward,
    labelled_torus_graph,
    one_hot_labels,
    read_labels,
)
from test_dtm import all_spins, small_graph, state_index


def write_fashion(folder, n_train=60, n_test=30, side=6, n_classes=3, seed=0):
    """Tiny IDX files under the distributed names: class c lights up its own
    band of rows (grey levels 0..255), so the classes are learnable."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % n_classes
        imgs = rng.integers(0, 20, (n, side, side))
        for k, c in enumerate(y):
            imgs[k, 2 * c : 2 * c + 2, :] = rng.integers(120, 256, (2, side))
        idx.write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), imgs.astype(np.uint8))
        idx.write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), y.astype(np.uint8))
    return folder


def test_loader_binarizes_at_a_tenth(tmp_path):
    folder = str(tmp_path)
    imgs = np.array([[[25, 26], [255, 0]]] * 3, dtype=np.uint8)  # 25/255 < 0.1 < 26/255
    for split in ("train", "t10k"):
        idx.write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte"), imgs)
        idx.write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte"), np.array([0, 1, 2], np.uint8))
    d = fashion_mnist(folder)
    np.testing.assert_array_equal(d.X_train, [[0, 1, 1, 0]] * 3)
    np.testing.assert_array_equal(d.y_test, [0, 1, 2])
    assert d.X_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert fashion_mnist(folder, limit=2).X_train.shape == (2, 4)


def test_missing_data_says_how_to_install(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        find_fashion_mnist(str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["train", "dtm-fashion", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install dataset-fashion-mnist" in err


def test_label_bits_round_trip_and_majority():
    y = np.array([0, 2, 1, 2])
    bits = one_hot_labels(y, 3, 4)
    assert bits.shape == (4, 12) and bits.dtype == np.uint8
    np.testing.assert_array_equal(bits[1], [0, 0, 1] * 4)
    np.testing.assert_array_equal(read_labels(bits, 3, 4), y)
    noisy = bits.copy()
    noisy[1, [0, 3]] = 1  # class 0 on in 2 of 4 spots, class 2 in all 4
    assert read_labels(noisy, 3, 4)[1] == 2
    with pytest.raises(ValueError, match="'y'"):
        one_hot_labels([0, 3], 3, 1)
    with pytest.raises(TypeError, match="'y'"):
        one_hot_labels(["a"], 3, 1)


def test_forward_with_a_rate_per_column():
    rates = np.array([0.9, 0.9, 0.2])
    fw = MixedRateForward(4, rates, t_end=3.0)
    n = 200_000
    x0 = np.tile(np.array([1, 0, 1], dtype=np.uint8), (n, 1))
    for t in (1, 4):
        x = fw.noise(x0, t, seed=3, offset=10 * t * n)
        p = 0.5 + 0.5 * np.exp(-rates * fw.times[t])
        np.testing.assert_allclose(fw.agreement(t), p, rtol=1e-12)
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs((x == x0).mean(axis=0) - p) < 4.5 * se)
    dt = np.diff(fw.times)
    np.testing.assert_allclose(fw.coupling, forward_coupling(dt[:, None] * rates[None, :]), rtol=1e-12)
    x1 = fw.step(x0, 1, seed=4)
    p1 = 1 - fw.flip_prob[0]
    assert np.all(np.abs((x1 == x0).mean(axis=0) - p1) < 4.5 * np.sqrt(p1 * (1 - p1) / n))
    with pytest.raises(ValueError, match="'x'"):
        fw.noise(np.zeros((2, 4), np.uint8), 1, seed=0)


def small_labelled_dtm():
    """small_graph(): visible nodes 0, 2 (pixels) and 5, 7 (two classes, one spot)."""
    g = small_graph()
    X = np.array([[1, 1], [0, 0], [1, 0]], dtype=np.uint8)
    m = LabelledDTM(
        graph=g,
        T=1,
        K=30,
        t_end=1.0,
        rate=0.9,
        label_rate=0.2,
        n_classes=2,
        label_spots=1,
        n_epochs=1,
        batch_size=3,
        n_records=4,
        acp_lag=2,
        progress=False,
        seed=1,
    )
    m.fit(X, np.array([0, 1, 0]))
    step = m.steps_[0]
    rng = np.random.default_rng(0)
    step.set_parameters(0.6 * rng.standard_normal(step.weights.size), 0.3 * rng.standard_normal(step.bias.size))
    return m


def exact_step(m, x1, clamp=None):
    """p_1(x^0 | x^1) over the 16 states of the visible bits (pixels, labels),
    with per-column input couplings; label bits fixed to ``clamp`` when given."""
    g, step = m.graph_, m.steps_[0]
    V, Z = all_spins(4), all_spins(g.latent.size)
    S = np.zeros((16, Z.shape[0], g.n_nodes))
    S[:, :, g.visible] = V[:, None, :]
    S[:, :, g.latent] = Z[None, :, :]
    lw = (S[..., g.edges_i] * S[..., g.edges_j]) @ step.weights + S @ step.bias
    lw += ((V * (2.0 * np.asarray(x1) - 1)) @ step.input_couplings)[:, None]
    lp = np.logaddexp.reduce(lw, axis=1)
    if clamp is not None:
        keep = np.all(V[:, 2:] == 2.0 * np.asarray(clamp) - 1, axis=1)
        lp = np.where(keep, lp, -np.inf)
    return np.exp(lp - np.logaddexp.reduce(lp))


def test_reverse_step_free_and_label_clamped_match_enumeration():
    m = small_labelled_dtm()
    fw = m.forward_
    np.testing.assert_allclose(
        m.steps_[0].input_couplings, forward_coupling(np.array([0.9, 0.9, 0.2, 0.2]) * fw.times[1])
    )
    n = 20_000
    x1 = np.array([1, 0, 0, 1], dtype=np.uint8)
    xt = np.tile(x1, (n, 1))
    free = m.sample_step(1, xt, n_sweeps=30, seed=5)
    tv = 0.5 * np.abs(np.bincount(state_index(free), minlength=16) / n - exact_step(m, x1)).sum()
    assert tv < math.sqrt(16 / n)  # E[TV] of n draws over 16 states is below 0.4 sqrt(16 / n)
    for c in (0, 1):
        out = m.sample_step(1, xt, n_sweeps=30, seed=6, labels=np.full(n, c))
        np.testing.assert_array_equal(out[:, 2:], np.tile(one_hot_labels([c], 2, 1), (n, 1)))
        p = exact_step(m, x1, clamp=one_hot_labels([c], 2, 1)[0])
        tv = 0.5 * np.abs(np.bincount(state_index(out), minlength=16) / n - p).sum()
        assert tv < math.sqrt(4 / n), (c, tv)


def test_mebm_label_clamped_sampling_matches_enumeration():
    g = small_graph()
    m = LabelledMEBM(
        graph=g,
        K_total=40,
        n_classes=2,
        label_spots=1,
        n_epochs=1,
        batch_size=3,
        n_records=4,
        acp_lag=2,
        progress=False,
        seed=2,
    )
    m.fit(np.array([[1, 1], [0, 0], [1, 0]], dtype=np.uint8), np.array([0, 1, 0]))
    step = m.steps_[0]
    rng = np.random.default_rng(1)
    step.set_parameters(0.6 * rng.standard_normal(step.weights.size), 0.3 * rng.standard_normal(step.bias.size))
    n = 20_000
    out = m.sample(n, seed=3, labels=np.ones(n, dtype=np.int64))
    np.testing.assert_array_equal(out[:, 2:], np.tile([0, 1], (n, 1)))
    V, Z = all_spins(4), all_spins(g.latent.size)
    S = np.zeros((16, Z.shape[0], g.n_nodes))
    S[:, :, g.visible] = V[:, None, :]
    S[:, :, g.latent] = Z[None, :, :]
    lp = np.logaddexp.reduce((S[..., g.edges_i] * S[..., g.edges_j]) @ step.weights + S @ step.bias, axis=1)
    lp = np.where(np.all(V[:, 2:] == [-1, 1], axis=1), lp, -np.inf)
    p = np.exp(lp - np.logaddexp.reduce(lp))
    tv = 0.5 * np.abs(np.bincount(state_index(out), minlength=16) / n - p).sum()
    assert tv < math.sqrt(4 / n)


def test_labelled_graph_and_checkpoint(tmp_path):
    g = labelled_torus_graph(70, (28, 28), 10, 10)
    assert g.n_nodes == 4900 and g.n_visible == 884 and np.all(g.degrees == 12)
    assert np.unique(g.visible).size == 884
    m = small_labelled_dtm()
    path = m.save(str(tmp_path / "m.npz"))
    m2 = LabelledDTM.load(path)
    assert (m2.n_classes, m2.label_spots, m2.label_rate) == (2, 1, 0.2)
    np.testing.assert_array_equal(m2.steps_[0].input_couplings, m.steps_[0].input_couplings)
    lab = np.array([0, 1, 1, 0])
    np.testing.assert_array_equal(m2.sample(4, seed=3, labels=lab), m.sample(4, seed=3, labels=lab))
    with pytest.raises(ValueError, match="'labels'"):
        m.sample(4, labels=[0, 1])
    with pytest.raises(ValueError, match="'y'"):
        m.fit(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="'graph'"):
        LabelledDTM(graph=small_graph(), n_classes=3, label_spots=1, progress=False).fit(
            np.zeros((2, 2), np.uint8), [0, 1]
        )
    with pytest.raises(ValueError, match="'label_rate'"):
        LabelledDTM(label_rate=0.0)


def blobs(n, seed, k=3, d=5):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = 4.0 * np.eye(k, d)
    return centres[y] + rng.standard_normal((n, d)), y


def test_classifier_learns_separable_blobs():
    X, y = blobs(900, 0)
    Xt, yt = blobs(300, 1)
    clf = MLPClassifier(hidden=(32, 16), epochs=20, batch_size=64, learning_rate=3e-3).fit(X, y)
    # the Bayes error of these blobs (centres 4 sqrt(2) apart) is about 0.3%
    assert clf.score(Xt, yt) > 0.97
    assert clf.history_[-1] < clf.history_[0]
    assert clf.features(Xt).shape == (300, 16)
    np.testing.assert_allclose(clf.predict_proba(Xt).sum(axis=1), 1.0, rtol=1e-6)
    assert conditional_accuracy(clf, Xt, yt) == clf.score(Xt, yt)
    assert conditional_accuracy(clf, Xt, (yt + 1) % 3) < 0.03
    with pytest.raises(ValueError, match="not fitted"):
        MLPClassifier().predict(Xt)
    with pytest.raises(ValueError, match="'X'"):
        clf.predict(Xt[:, :4])


def exact_moments(n, mean, cov, seed):
    """n points whose sample mean and covariance (ddof 1) are exactly mean, cov."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z @ np.linalg.cholesky(cov).T + mean


def test_frechet_distance_against_closed_forms():
    m1, m2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 0.0])
    d1, d2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    a = exact_moments(500, m1, np.diag(d1), 0)
    b = exact_moments(400, m2, np.diag(d2), 1)
    # commuting covariances: |m1 - m2|^2 + sum (sqrt(d1) - sqrt(d2))^2
    expect = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expect, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # general covariances, against scipy's matrix square root
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    S1, S2 = A @ A.T + 0.1 * np.eye(3), B @ B.T + 0.1 * np.eye(3)
    a, b = exact_moments(600, m1, S1, 3), exact_moments(700, m2, S2, 4)
    cross = np.real(linalg.sqrtm(S1 @ S2))
    expect = np.sum((m1 - m2) ** 2) + np.trace(S1 + S2 - 2 * cross)
    assert frechet_distance(a, b) == pytest.approx(expect, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(expect, rel=1e-8)
    with pytest.raises(ValueError, match="'b'"):
        frechet_distance(a, b[:, :2])


def test_train_dtm_fashion_end_to_end_on_tiny_idx_files(tmp_path, capsys):
    folder = write_fashion(str(tmp_path / "fashion"))
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "dtm-fashion",
            "--data",
            folder,
            "--side",
            "14",
            "--T",
            "2",
            "--K",
            "3",
            "--epochs",
            "1",
            "--per-class",
            "4",
            "--classifier-epochs",
            "30",
            "--records",
            "4",
            "--batch-size",
            "20",
            "--models",
            "dtm_acp,mebm",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "36 pixels + 30 label nodes" in text and "Frechet(clf)" in text and "not FID" in text
    res = json.loads((out / "results.json").read_text())
    assert set(res["models"]) == {"dtm_acp", "mebm"}
    assert res["classifier_test_accuracy"] > 0.9  # the tiny classes are bands of bright rows
    for name in ("dtm_acp", "mebm"):
        assert res["models"][name]["clamped"]["sweeps_per_sample"] == 6
        z = np.load(out / f"samples_{name}_clamped.npz")
        assert z["images"].shape == (12, 6, 6) and z["images"].dtype == np.uint8
        np.testing.assert_array_equal(z["labels"], np.repeat(np.arange(3), 4))
        assert set(np.unique(z["images"])) <= {0, 1}
        assert (out / f"samples_{name}_free.npz").exists() and (out / f"{name}.npz").exists()


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [LabelledDTM, LabelledMEBM])
def test_cuda_labelled_models_equal_the_cpu(tmp_path, cls):
    """Trained on the CPU and saved, loaded on the GPU and on the CPU and
    trained on: the same parameters, free and label-clamped samples."""
    from heatbath.data.digits import binarized_digits

    d = binarized_digits()
    X, y = d.X_train.astype(np.uint8)[:120], d.y_train[:120]
    kw = dict(graph=labelled_torus_graph(14, (8, 8), 10, 2), label_spots=2, n_epochs=1, batch_size=50, warmup=2,
              n_records=4, acp_lag=2, progress=False, seed=8, beta=(0.8, 1.2))
    kw.update(dict(T=2, K=4) if cls is LabelledDTM else dict(K_total=8))
    path = cls(**kw).fit(X, y).save(str(tmp_path / "m"))
    a = cls.load(path).set_params(n_epochs=2).fit(X, y)
    b = cls.load(path, device="cuda").set_params(n_epochs=2).fit(X, y)
    for sa, sb in zip(a.steps_, b.steps_):
        for name, arr in sa.state_arrays().items():
            np.testing.assert_array_equal(sb.state_arrays()[name], arr, err_msg=name)
    lab = np.arange(200) % 10
    np.testing.assert_array_equal(b.sample(200, seed=1), a.sample(200, seed=1))
    np.testing.assert_array_equal(b.sample(200, seed=2, labels=lab), a.sample(200, seed=2, labels=lab))
