"""heatbath.dtm: forward process against its closed form, reverse steps of a
T = 1 DTM against exact enumeration, training against the exact posterior,
mixing diagnostics against AR(1) closed forms, errors and checkpoints."""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest
from heatbath import checkpoint
from heatbath.dtm import (
    DTM,
    MEBM,
    BitFlipForward,
    forward_coupling,
    grid_graph,
    make_graph,
    mixing,
    time_grid,
    torus_graph,
)


def small_graph():
    """8 nodes on a ring with chords of odd length (bipartite, 2 colours);
    4 visible nodes, 4 latent."""
    i = [k for k in range(8)] + [0, 2, 4, 6]
    j = [(k + 1) % 8 for k in range(8)] + [3, 5, 7, 1]
    return make_graph(8, i, j, visible=[0, 2, 5, 7], colours=np.arange(8) % 2)


def all_spins(n):
    return np.array(list(itertools.product([-1, 1], repeat=n)), dtype=np.float64)


def exact_conditional(model, t, x_t):
    """p_t(x^{t-1} | x^t) over the 2^n_visible states of x^{t-1} (bits in
    itertools.product order), latents summed out, from the model's weights."""
    g = model.graph_
    step = model.steps_[t - 1]
    nv, lat = g.n_visible, g.latent
    V = all_spins(nv)
    Z = all_spins(lat.size)
    S = np.zeros((V.shape[0], Z.shape[0], g.n_nodes))
    S[:, :, g.visible] = V[:, None, :]
    S[:, :, lat] = Z[None, :, :]
    lw = (S[..., g.edges_i] * S[..., g.edges_j]) @ step.weights + S @ step.bias
    lw += step.coupling * (V @ (2.0 * np.asarray(x_t) - 1))[:, None]
    lp = np.logaddexp.reduce(lw, axis=1)
    return np.exp(lp - np.logaddexp.reduce(lp))


def state_index(bits):
    nv = bits.shape[1]
    return (bits.astype(np.int64) * (1 << np.arange(nv - 1, -1, -1))).sum(axis=1)


# ---------------------------------------------------------------------------
# forward process
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["linear", "log"])
def test_forward_marginals_match_closed_form(schedule):
    fw = BitFlipForward(5, rate=1.3, t_end=2.0, schedule=schedule)
    n = 400_000
    x0 = (np.arange(n) % 3 == 0).astype(np.uint8)
    x = x0
    for t in range(1, fw.T + 1):
        x = fw.step(x, t, seed=5, offset=t * n)
        p = 0.5 + 0.5 * math.exp(-1.3 * fw.times[t])
        assert fw.agreement(t) == pytest.approx(p, rel=1e-12)
        se = math.sqrt(p * (1 - p) / n)
        assert abs((x == x0).mean() - p) < 4.5 * se, t
        xd = fw.noise(x0, t, seed=6, offset=t * n)  # closed form in one draw
        assert abs((xd == x0).mean() - p) < 4.5 * se, t


def test_forward_coupling_is_the_one_step_kernel():
    fw = BitFlipForward(4, rate=0.7, t_end=3.0, schedule="log")
    for t in range(fw.T):
        rdt = 0.7 * (fw.times[t + 1] - fw.times[t])
        w = forward_coupling(rdt)
        assert fw.coupling[t] == pytest.approx(w, rel=1e-12)
        # q(s' = s | s) = exp(w) / (2 cosh w) must be 1 - flip probability = 1/2 + 1/2 exp(-rate dt)
        same = math.exp(w) / (2 * math.cosh(w))
        assert same == pytest.approx(1 - fw.flip_prob[t], rel=1e-12, abs=1e-15)
        assert same == pytest.approx(0.5 + 0.5 * math.exp(-rdt), rel=1e-12)


def test_time_grids():
    lin = time_grid(4, "linear", 2.0)
    np.testing.assert_allclose(lin, [0, 0.5, 1.0, 1.5, 2.0])
    lg = time_grid(6, "log", 3.0, offset=0.15)
    assert lg[0] == 0 and lg[-1] == 3.0 and np.all(np.diff(lg) > 0)
    assert np.all(np.diff(np.diff(lg)) > 0)  # steps grow
    with pytest.raises(ValueError, match="'kind'"):
        time_grid(3, "cosine")
    with pytest.raises(ValueError, match="'T'"):
        time_grid(0)
    with pytest.raises(ValueError, match="'t_end'"):
        time_grid(3, t_end=-1.0)


# ---------------------------------------------------------------------------
# graphs
# ---------------------------------------------------------------------------


def test_graph_builders():
    g = torus_graph(12, 64)
    assert g.n_nodes == 144 and g.n_visible == 64 and g.latent.size == 80
    assert np.all(g.degrees == 12)
    assert np.unique(g.visible).size == 64
    assert np.all(g.colours[g.edges_i] != g.colours[g.edges_j])
    gg = grid_graph(10, 25, layout="block")
    assert np.all(gg.degrees == 4) and gg.n_visible == 25
    gr = torus_graph(8, 20, layout="random", seed=3)
    assert np.unique(gr.visible).size == 20
    with pytest.raises(ValueError, match="'n_visible'"):
        torus_graph(4, 64)  # no room for the data nodes
    with pytest.raises(ValueError, match="'side'"):
        torus_graph(8, 64, image_shape=(4, 16))  # 4x16 image in an 8x8 grid
    with pytest.raises(ValueError, match="'visible'"):
        make_graph(4, [0, 1], [1, 2], visible=[0, 0])
    with pytest.raises(ValueError, match="'colours'"):
        make_graph(3, [0, 1], [1, 2], visible=[0], colours=[0, 0, 1])


# ---------------------------------------------------------------------------
# reverse step against enumeration
# ---------------------------------------------------------------------------


def fitted_small_dtm(T=1, **kw):
    g = small_graph()
    X = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype=np.uint8)
    params = dict(graph=g, T=T, K=30, t_end=1.0, n_epochs=1, batch_size=3, n_records=4, acp_lag=2,
                  progress=False, seed=1)
    params.update(kw)
    return DTM(**params).fit(X)


def test_t1_conditional_matches_enumeration():
    m = fitted_small_dtm()
    step = m.steps_[0]
    rng = np.random.default_rng(0)
    w, b = 0.6 * rng.standard_normal(step.weights.size), 0.3 * rng.standard_normal(step.bias.size)
    step.set_parameters(w, b)
    n = 20_000
    for x1 in ([1, 0, 0, 1], [1, 1, 1, 0]):
        x_t = np.tile(np.array(x1, dtype=np.uint8), (n, 1))
        x0 = m.sample_step(1, x_t, n_sweeps=30, seed=11)
        freq = np.bincount(state_index(x0), minlength=16) / n
        p = exact_conditional(m, 1, x1)
        tv = 0.5 * np.abs(freq - p).sum()
        # E[TV] of n multinomial draws over 16 states is below 0.4 sqrt(16 / n)
        assert tv < math.sqrt(16 / n), (x1, tv)


def expected_posterior_kl(m, X):
    """E_{x^0 ~ data, x^1 ~ q} KL(q(x^0 | x^1) || p(x^0 | x^1)), exact."""
    fw = m.forward_
    a = fw.agreement(1)
    states = ((all_spins(4) + 1) / 2).astype(np.uint8)
    pdata = np.zeros(16)
    np.add.at(pdata, state_index(X), 1.0 / len(X))
    kl = 0.0
    for x1 in states:
        agree = (states == x1).sum(axis=1)
        lik = a**agree * (1 - a) ** (4 - agree)  # q(x^1 | x^0) for every x^0
        joint = pdata * lik
        q1 = joint.sum()
        post = joint / q1
        p = exact_conditional(m, 1, x1)
        nz = post > 0
        kl += q1 * np.sum(post[nz] * np.log(post[nz] / p[nz]))
    return kl


def test_training_a_t1_dtm_approaches_the_exact_posterior():
    X = np.array([[1, 1, 0, 0], [0, 0, 1, 1]] * 32, dtype=np.uint8)
    m = DTM(graph=small_graph(), T=1, K=20, t_end=1.5, n_epochs=1, batch_size=64, warmup=10, n_records=10,
            acp=False, acp_lag=2, init_scale=0.0, learning_rate=0.02, progress=False, seed=2)
    m.fit(X)
    kl_start = expected_posterior_kl(m, X)
    m.set_params(n_epochs=100).fit(X)
    kl_end = expected_posterior_kl(m, X)
    assert kl_end < 0.2 * kl_start, (kl_start, kl_end)


# ---------------------------------------------------------------------------
# mixing diagnostics against AR(1)
# ---------------------------------------------------------------------------


def ar1(rho, n, chains, seed):
    from scipy.signal import lfilter

    e = np.random.default_rng(seed).standard_normal((n + 200, chains))
    return lfilter([1.0], [1.0, -rho], e, axis=0)[200:]


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ar1_autocorrelation_and_integrated_time(rho):
    x = ar1(rho, 50_000, 4, seed=int(rho * 10))
    r = mixing.autocorrelation(x, max_lag=8)
    np.testing.assert_allclose(r, rho ** np.arange(9), atol=0.02)
    tau = mixing.integrated_time(x)
    assert tau == pytest.approx((1 + rho) / (1 - rho), rel=0.1)
    ess = mixing.effective_sample_size(x)
    assert ess == pytest.approx(x.size / tau, rel=1e-9)
    k = math.ceil(math.log(0.1) / math.log(rho) - 1e-9)
    k = k if rho**k < 0.1 else k + 1
    if abs(rho**k - 0.1) > 0.02 and abs(rho ** (k - 1) - 0.1) > 0.02:
        assert mixing.sweeps_to_decorrelate(x, threshold=0.1) == k
    rep = mixing.mixing_report(x, threshold=0.1, max_lag=20)
    assert rep.rho.size == 21 and rep.n_chains == 4 and rep.tau == pytest.approx(tau)


def test_mixing_edge_cases():
    assert mixing.sweeps_to_decorrelate(np.ones((10, 2))) is None  # never moved
    iid = np.random.default_rng(1).standard_normal((20_000, 2))
    assert mixing.integrated_time(iid) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="'x'"):
        mixing.autocorrelation(np.ones((1, 3)))
    with pytest.raises(ValueError, match="'max_lag'"):
        mixing.autocorrelation(np.ones(5), max_lag=5)


def test_fit_records_mixing_per_step():
    m = fitted_small_dtm(T=2, n_epochs=2, n_records=6)
    assert len(m.history_) == 4 and {h["step"] for h in m.history_} == {1, 2}
    assert len(m.mixing_) == 2 and all(r.n_sweeps == 6 for r in m.mixing_)
    reps = m.mixing(np.array([[1, 1, 0, 0]]), n_chains=32, n_sweeps=20)
    assert len(reps) == 2 and all(r.tau > 0 for r in reps)


# ---------------------------------------------------------------------------
# errors and checkpoints
# ---------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="'T'"):
        DTM(T=0)
    with pytest.raises(TypeError, match="'K'"):
        DTM(K=2.5)
    with pytest.raises(ValueError, match="'device'"):
        DTM(device="gpu")
    with pytest.raises(ValueError, match="'schedule'|'kind'"):
        DTM(schedule="cosine")
    with pytest.raises(ValueError, match="'acp_lag'"):
        DTM(acp_lag=30, n_records=10)
    with pytest.raises(TypeError, match="'beta'"):
        DTM(beta="hot")
    with pytest.raises(TypeError, match="'graph'"):
        DTM(graph="torus")
    with pytest.raises(ValueError, match="'K_total'"):
        MEBM(K_total=0)
    m = DTM(graph=small_graph(), T=1, n_epochs=1, progress=False, acp_lag=2, n_records=4)
    with pytest.raises(ValueError, match="not fitted"):
        m.sample(3)
    with pytest.raises(ValueError, match="'X'"):
        m.fit(np.full((5, 4), 0.5))  # not binary
    with pytest.raises(ValueError, match="'X'"):
        m.fit(np.zeros((5, 3)))  # 3 features, 4 visible nodes
    with pytest.raises(ValueError, match="'X'"):
        m.fit(np.zeros(4))
    m.fit(np.eye(4))
    with pytest.raises(ValueError, match="'t'"):
        m.sample_step(2, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="'x_t'"):
        m.sample_step(1, np.full((1, 4), 2))
    with pytest.raises(ValueError, match="'n_samples'"):
        m.sample(0)


def test_parameters_follow_the_signature():
    # own parameters first, then the shared ones; positional calls bind in that order
    dtm_own = ["graph", "T", "K", "rate", "t_end", "schedule", "offset"]
    for cls, own in ((DTM, dtm_own), (MEBM, ["graph", "K_total"])):
        names = list(inspect.signature(cls).parameters)
        assert names[: len(own)] == own and names[len(own)] == "learning_rate" and names[-1] == "verbose"
        assert list(cls().get_params()) == names
    m = DTM(None, 3, 5, 1.0, 3.0, "log", 0.15, 0.05)
    assert (m.T, m.K, m.learning_rate) == (3, 5, 0.05)
    assert (MEBM(None, 50, 0.03).K_total, MEBM(None, 50, 0.03).learning_rate) == (50, 0.03)


def test_mebm_without_latents_clamps_data_bits_to_their_nodes():
    # node 1 holds bit 0 (always 1), node 0 holds bit 1 (always 0): the biases follow the nodes
    g = make_graph(2, [0], [1], visible=[1, 0], colours=[0, 1])
    X = np.array([[1, 0]] * 16, dtype=np.uint8)
    e = MEBM(graph=g, K_total=4, n_epochs=5, batch_size=16, n_records=4, acp_lag=2, acp=False,
             learning_rate=0.1, progress=False).fit(X)
    assert e.steps_[0].bias[1] > 0.2 and e.steps_[0].bias[0] < -0.2


def test_save_load_round_trip(tmp_path):
    m = fitted_small_dtm(T=2, n_epochs=3, beta=(0.8, 1.2))
    path = m.save(str(tmp_path / "dtm"))
    m2 = DTM.load(path)
    for a, b in zip(m.steps_, m2.steps_):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert a.cp == b.cp and a.coupling == b.coupling
    np.testing.assert_array_equal(m.sample(40, seed=3), m2.sample(40, seed=3))
    assert m2.history_ == m.history_ and m2.epochs_trained_ == 3 and m2.beta == (0.8, 1.2)
    # MEBM: round trip, and each kind refuses the other's checkpoint
    X = np.array([[1, 1, 0, 0], [0, 0, 1, 1]] * 4, dtype=np.uint8)
    e = MEBM(graph=small_graph(), K_total=20, n_epochs=2, n_records=4, acp_lag=2, progress=False).fit(X)
    pe = e.save(str(tmp_path / "mebm.npz"))
    np.testing.assert_array_equal(e.sample(30, seed=4), MEBM.load(pe).sample(30, seed=4))
    with pytest.raises(checkpoint.CheckpointError, match="'mebm'"):
        DTM.load(pe)
    with pytest.raises(checkpoint.CheckpointError, match="'dtm'"):
        MEBM.load(path)


def test_sampling_reuses_its_engines_without_changing_the_samples(tmp_path):
    """Sampling keeps one engine per step between calls: a call's samples do
    not depend on the calls before it (other sizes, seeds, beta), on the chain
    count (a chain's sample is the same in a larger call), and follow later
    training exactly as a freshly loaded copy does."""
    m = fitted_small_dtm(T=2)
    a = m.sample(40, seed=3)
    m.sample(70, seed=5, beta=(0.5, 1.0))
    m.sample_step(1, np.ones((9, 4), dtype=np.uint8), seed=2)
    np.testing.assert_array_equal(m.sample(40, seed=3), a)
    np.testing.assert_array_equal(m.sample(70, seed=3)[:40], a)
    steps = m.sample(40, seed=3, return_steps=True)
    assert len(steps) == 3 and all(x.shape == (40, 4) and x.dtype == np.uint8 for x in steps)
    np.testing.assert_array_equal(steps[-1], a)
    x1 = m.sample_step(2, steps[0], seed=3)
    np.testing.assert_array_equal(m.sample_step(2, steps[0], seed=3), x1)
    X = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype=np.uint8)
    m.set_params(n_epochs=2).fit(X)  # new weights: the kept engines must take them
    fresh = DTM.load(m.save(str(tmp_path / "dtm")))
    np.testing.assert_array_equal(m.sample(40, seed=3), fresh.sample(40, seed=3))
    e = MEBM(graph=small_graph(), K_total=20, n_epochs=1, n_records=4, acp_lag=2, progress=False).fit(X)
    b = e.sample(40, seed=4)
    e.sample(70, seed=6)
    np.testing.assert_array_equal(e.sample(40, seed=4), b)
    np.testing.assert_array_equal(e.sample(70, seed=4)[:40], b)
    e.set_params(n_epochs=2).fit(X)
    fresh_e = MEBM.load(e.save(str(tmp_path / "mebm")))
    np.testing.assert_array_equal(e.sample(40, seed=4), fresh_e.sample(40, seed=4))


def test_mebm_learns_the_data_marginals():
    X = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]] * 10, dtype=np.uint8)
    e = MEBM(graph=small_graph(), K_total=30, n_epochs=80, batch_size=30, n_records=8, acp_lag=2,
             learning_rate=0.05, progress=False, seed=3).fit(X)
    s = e.sample(4000, seed=5)
    np.testing.assert_allclose(s.mean(axis=0), X.mean(axis=0), atol=0.08)


def test_global_centring_on_short_chains_is_unbiased():
    x = ar1(0.8, 24, 4000, seed=7)  # many short chains of one distribution
    r_chain = mixing.autocorrelation(x, max_lag=4)
    r_global = mixing.autocorrelation(x, max_lag=4, center="global")
    np.testing.assert_allclose(r_global, 0.8 ** np.arange(5) * (1 - np.arange(5) / 24), atol=0.03)
    assert np.all(r_chain[1:] < r_global[1:] - 0.05)  # own-mean centring: biased low by ~tau / n


def test_debiased_own_mean_centring():
    for rho in (0.3, 0.6):
        x = ar1(rho, 24, 4000, seed=8)
        r = mixing.autocorrelation(x, max_lag=4, debias=True)
        np.testing.assert_allclose(r, rho ** np.arange(5) * (1 - np.arange(5) / 24), atol=0.03)
