"""The packed-spin kernels of DTM training (heatbath.dtm._kernels) against
numpy references, and DTM/MEBM training against the state-based training
loop it replaces (int8 states copied out of the engine every recorded sweep,
float32 Gram-matrix moments, numpy Adam): the same parameters to the bit.
GPU tests: the CUDA path against the CPU path, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath import random as hr
from heatbath.dtm import DTM, MEBM, BitFlipForward, make_graph, torus_graph
from heatbath.dtm import _kernels as kern
from heatbath.dtm import model as dm
from heatbath.dtm.mixing import chain_statistic
from heatbath.ebm import SparseIsing
from heatbath.ebm.graphs import graph_from_edges
from heatbath.ebm.sparse import _pack_spins


def small_graph():
    """8 nodes on a ring with chords (bipartite); 4 visible, 4 latent."""
    i = [k for k in range(8)] + [0, 2, 4, 6]
    j = [(k + 1) % 8 for k in range(8)] + [3, 5, 7, 1]
    return make_graph(8, i, j, visible=[0, 2, 5, 7], colours=np.arange(8) % 2)


def random_state(rows, chains, seed):
    """Packed spins with random padding bits (which every kernel must ignore)."""
    W = (chains + 31) // 32
    return np.random.default_rng(seed).integers(0, 1 << 32, (rows, W), dtype=np.uint64).astype(np.uint32)


def unpacked(words, chains):
    """+/-1 float64 states (chains, rows), by numpy's unpackbits."""
    b = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :chains]
    return (2.0 * b - 1.0).T


# ---------------------------------------------------------------------------
# kernels against numpy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("chains", [1, 31, 32, 33, 250, 300])
def test_pack_and_unpack_match_numpy(chains):
    rng = np.random.default_rng(chains)
    bits = (rng.random((chains, 37)) < 0.5).astype(np.uint8)
    bits[bits == 1] = rng.integers(1, 256, int(bits.sum()))  # any nonzero byte is up
    words = kern.pack_rows(bits)
    ref = _pack_spins(np.where(bits.T != 0, 1, -1).astype(np.int8))  # np.packbits, padding 0
    np.testing.assert_array_equal(words, ref)
    noisy = random_state(37, chains, 1)
    W = words.shape[1]
    keep = np.uint32((1 << (chains - 32 * (W - 1))) - 1) if chains % 32 else np.uint32(0xFFFFFFFF)
    noisy[:, :-1] = words[:, :-1]
    noisy[:, -1] = (words[:, -1] & keep) | (noisy[:, -1] & ~keep)  # padding bits random
    np.testing.assert_array_equal(kern.unpack_rows(noisy, chains), (bits != 0).astype(np.uint8))


@pytest.mark.parametrize("chains", [1, 45, 64, 250])
def test_moment_counts_equal_the_numpy_moments_exactly(chains):
    rows, n = 30, 24
    rng = np.random.default_rng(chains)
    nodes = np.arange(n, dtype=np.int32)
    ei = rng.integers(0, rows, 50).astype(np.int32)
    ej = rng.integers(0, rows, 50).astype(np.int32)
    up, agree = np.zeros(n, np.int64), np.zeros(50, np.int64)
    states = [random_state(rows, chains, s) for s in range(3)]
    for s in states:
        kern.count_moments(s, chains, nodes, up, ei, ej, agree)
    S = np.concatenate([unpacked(s, chains) for s in states])  # (records x chains, rows), +/-1
    N = S.shape[0]
    np.testing.assert_array_equal(up, (S[:, :n] > 0).sum(axis=0))
    np.testing.assert_array_equal(agree, (S[:, ei] == S[:, ej]).sum(axis=0))
    # the moments the training step uses, as the state-based code computed them
    X = S.astype(np.float32)
    G = X.T @ X
    np.testing.assert_array_equal((2 * up - N) / N, X[:, :n].mean(axis=0, dtype=np.float64))
    np.testing.assert_array_equal((2 * agree - N) / N, G[ei, ej].astype(np.float64) / N)


def numpy_adam_step(p, pos, neg, ei, ej, wd, cp, lr, t, b1=0.9, b2=0.999, eps=1e-8):
    """The numpy gradient and Adam step of the state-based code, on moments."""
    p1, p2 = pos
    n1, n2 = neg
    gw = p2 - n2 - wd * p["w"]
    if cp:
        gw += cp * (n1[ei] * n1[ej] - n2)
    gb = p1 - n1
    c1, c2 = 1 - b1**t, 1 - b2**t
    for x, g, m, v in ((p["w"], gw, p["mw"], p["vw"]), (p["b"], gb, p["mb"], p["vb"])):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        x += lr * (m / c1) / (np.sqrt(v / c2) + eps)


@pytest.mark.parametrize("cp, wd", [(0.0, 0.0), (0.3, 0.01)])
def test_adam_step_equals_numpy_adam_to_the_bit(cp, wd):
    rng = np.random.default_rng(7)
    n, E = 20, 45
    ei = rng.integers(0, n, E).astype(np.int32)
    ej = rng.integers(0, n, E).astype(np.int32)
    Np, Nn = 37, 24 * 37
    pos = (rng.integers(0, Np + 1, n), rng.integers(0, Np + 1, E), Np)
    neg = (rng.integers(0, Nn + 1, n), rng.integers(0, Nn + 1, E), Nn)
    p = {"w": rng.normal(0, 0.1, E), "b": rng.normal(0, 0.1, n)}
    for k, size in (("mw", E), ("vw", E), ("mb", n), ("vb", n)):
        p[k] = rng.random(size) * 1e-3
    ref = {k: v.copy() for k, v in p.items()}
    engine_pos = rng.permutation(3 * E)[: 2 * E].astype(np.int64)  # both entries of each edge
    engine_w = rng.random(3 * E).astype(np.float32)
    engine_b = rng.random(n + 5).astype(np.float32)
    w0, b0 = engine_w.copy(), engine_b.copy()
    for t in (1, 2, 3):
        kern.adam_step(
            ei,
            ej,
            pos,
            neg,
            p,
            wd,
            cp,
            0.02,
            0.9,
            0.999,
            1 - 0.9**t,
            1 - 0.999**t,
            1e-8,
            engine_w,
            engine_pos,
            engine_b,
        )
        moments = [((2 * c[0] - c[2]) / c[2], (2 * c[1] - c[2]) / c[2]) for c in (pos, neg)]
        numpy_adam_step(ref, moments[0], moments[1], ei, ej, wd, cp, 0.02, t)
    for k in ref:
        np.testing.assert_array_equal(p[k], ref[k], err_msg=k)
    other = np.setdiff1d(np.arange(3 * E), engine_pos)
    np.testing.assert_array_equal(engine_w[engine_pos[0::2]], ref["w"].astype(np.float32))
    np.testing.assert_array_equal(engine_w[engine_pos[1::2]], ref["w"].astype(np.float32))
    np.testing.assert_array_equal(engine_w[other], w0[other])
    np.testing.assert_array_equal(engine_b[:n], ref["b"].astype(np.float32))
    np.testing.assert_array_equal(engine_b[n:], b0[n:])


def test_kernel_arguments_are_checked():
    s = random_state(10, 40, 0)
    nodes = np.arange(4, dtype=np.int32)
    up, ag = np.zeros(4, np.int64), np.zeros(2, np.int64)
    ei, ej = np.array([0, 1], np.int32), np.array([2, 9], np.int32)
    with pytest.raises(TypeError, match="'bits'"):
        kern.pack_rows(np.zeros((3, 4), np.int32))
    with pytest.raises(ValueError, match="'out'"):
        kern.pack_rows(np.zeros((3, 4), np.uint8), np.zeros((4, 2), np.uint32))
    with pytest.raises(ValueError, match="'words'"):
        kern.unpack_rows(s, 70)
    with pytest.raises(TypeError, match="'up'"):
        kern.count_moments(s, 40, nodes, up.astype(np.int32), ei, ej, ag)
    with pytest.raises(ValueError, match="'edge_j'"):
        kern.count_moments(s, 40, nodes, up, ei, np.array([2, 10], np.int32), ag)
    with pytest.raises(ValueError, match="'nodes'"):
        kern.count_moments(s, 40, np.array([0, 1, 2, -1], np.int32), up, ei, ej, ag)
    with pytest.raises(ValueError, match="'state'"):
        kern.count_moments(s[:, :1].copy(), 40, nodes, up, ei, ej, ag)


# ---------------------------------------------------------------------------
# training against the state-based loop
# ---------------------------------------------------------------------------


class _RefStep:
    """One step of the state-based training code: its own engines, float64
    parameters, numpy moments and Adam."""

    def __init__(self, g, coupling):
        n = g.n_nodes
        self.g, self.coupling = g, coupling
        self.n_in = g.n_visible if coupling is not None else 0
        self.N = n + self.n_in
        self.inputs = n + np.arange(self.n_in)
        fi = np.concatenate([g.edges_i, g.visible[: self.n_in]])
        fj = np.concatenate([g.edges_j, self.inputs])
        self.order = np.lexsort((fj, fi))
        self.fi, self.fj = fi[self.order], fj[self.order]
        ncol = max(2, int(g.colours.max()) + 1)
        self.colours = np.concatenate([g.colours, (g.colours[g.visible[: self.n_in]] + 1) % ncol]).astype(
            np.int32
        )
        E = g.n_edges
        self.p = {
            "w": np.zeros(E),
            "mw": np.zeros(E),
            "vw": np.zeros(E),
            "b": np.zeros(n),
            "mb": np.zeros(n),
            "vb": np.zeros(n),
        }
        self.t, self.cp, self.engines, self.last_stat = 0, 0.0, {}, None

    def full(self):
        w = np.concatenate([self.p["w"], np.full(self.n_in, self.coupling or 0.0)])[self.order]
        return w, np.concatenate([self.p["b"], np.zeros(self.n_in)])

    def engine(self, key, C, seed):
        w, b = self.full()
        eng = self.engines.get(key)
        if eng is None:
            eng = self.engines[key] = SparseIsing(
                graph_from_edges(self.N, self.fi, self.fj, w),
                b,
                n_chains=C,
                colouring=self.colours,
                seed=seed,
            )
        else:
            eng.set_parameters(w, b)
        return eng

    @staticmethod
    def run(eng, s0, clamp, vals, warmup, n_records):
        eng.unclamp()
        if s0 is not None:
            eng.state = s0
        if clamp.size:
            eng.clamp(clamp, vals)
        eng.beta = 1.0
        eng.sweep(warmup)
        if n_records == 0:
            return eng.state[None]
        out = np.empty((n_records, eng.n_chains, eng.n_nodes), dtype=np.int8)
        for r in range(n_records):
            eng.sweep(1)
            out[r] = eng.state
        return out

    def moments(self, S):
        X = S.reshape(-1, S.shape[-1])[:, : self.g.n_nodes].astype(np.float32)
        G = X.T @ X
        return X.mean(axis=0, dtype=np.float64), G[self.g.edges_i, self.g.edges_j].astype(
            np.float64
        ) / X.shape[0]

    def learn(self, S_pos, S_neg, model):
        self.t += 1
        numpy_adam_step(
            self.p,
            self.moments(S_pos),
            self.moments(S_neg),
            self.g.edges_i,
            self.g.edges_j,
            model.weight_decay,
            self.cp,
            model.learning_rate,
            self.t,
        )
        self.last_stat = chain_statistic(S_neg, self.g.visible)


def reference_fit(model, X):
    """Parameters of ``model`` (unfitted; acp off) trained on X by the
    state-based loop: list of _RefStep."""
    seed = hr.as_seed(model.seed)
    g = model.graph
    dtm = isinstance(model, DTM)
    fw = BitFlipForward(model.T, model.rate, model.t_end, model.schedule, model.offset) if dtm else None
    steps = [_RefStep(g, float(c)) for c in fw.coupling] if dtm else [_RefStep(g, None)]
    for k, st in enumerate(steps):
        st.p["w"][:] = model.init_scale * hr.normal(
            g.n_edges, seed, stream=dm._STREAM_INIT, offset=k << 32, dtype="float64"
        )
        st.cp = model.cp_init
    offsets = {"noise": 0, "spins": 0}

    def uniform(shape, kind, stream):
        u = hr.uniform(shape, seed, offset=offsets[kind], stream=stream, dtype="float64")
        offsets[kind] += u.size
        return u

    def init(st, x_vis, x_in=None):
        s = np.where(uniform((x_vis.shape[0], st.N), "spins", dm._STREAM_SPINS) < 0.5, 1, -1).astype(np.int8)
        s[:, g.visible] = 2 * x_vis.astype(np.int8) - 1
        if x_in is not None:
            s[:, st.inputs] = 2 * x_in.astype(np.int8) - 1
        return s

    def positive(st, key, sd, x_vis, x_in=None):
        s0 = init(st, x_vis, x_in)
        if not g.latent.size:
            return s0[None]
        clamp = np.concatenate([g.visible, st.inputs])
        return st.run(st.engine(key, x_vis.shape[0], sd), s0, clamp, s0[:, clamp], model.pos_sweeps, 0)

    n = X.shape[0]
    bs = min(model.batch_size, n)
    for epoch in range(model.n_epochs):
        perm = np.argsort(
            hr.uniform(n, seed, offset=epoch * n, stream=dm._STREAM_PERM, dtype="float64"), kind="stable"
        )
        for start in range(0, n, bs):
            x0 = X[perm[start : start + bs]]
            C = x0.shape[0]
            if dtm:
                for t in range(1, model.T + 1):
                    st = steps[t - 1]
                    x_prev = fw.noise(x0, t - 1, seed, offset=offsets["noise"], stream=dm._STREAM_NOISE)
                    offsets["noise"] += x0.size
                    x_t = fw.step(x_prev, t, seed, offset=offsets["noise"], stream=dm._STREAM_NOISE)
                    offsets["noise"] += x0.size
                    key, sd = ("train", C), dm._subseed(seed, 1, t, C)
                    S_pos = positive(st, key, sd, x_prev, x_t)
                    eng = st.engine(key, C, sd)
                    s0 = init(st, x_t, x_t)
                    S_neg = st.run(
                        eng, s0, st.inputs, 2 * x_t.astype(np.int8) - 1, model.warmup, model.n_records
                    )
                    st.learn(S_pos, S_neg, model)
            else:
                st = steps[0]
                S_pos = positive(st, ("pos", C), dm._subseed(seed, 1, C), x0)
                P = model.batch_size
                eng = st.engine(("neg", P), P, dm._subseed(seed, 2, P))
                S_neg = st.run(eng, None, np.zeros(0, np.int64), None, model.warmup, model.n_records)
                st.learn(S_pos, S_neg, model)
    return steps


def assert_same_training(model, steps):
    for k, (a, b) in enumerate(zip(model.steps_, steps)):
        got = a.state_arrays()
        for name in ("w", "b", "mw", "vw", "mb", "vb"):
            np.testing.assert_array_equal(got[name], b.p[name], err_msg=f"step {k}: {name}")
        assert a.adam_t == b.t
        # the mixing statistic of the last batch: the same states; float32 projections
        np.testing.assert_allclose(a.last_stat, b.last_stat, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [DTM, MEBM])
def test_training_equals_the_state_based_loop(cls):
    X = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0]] * 4, dtype=np.uint8)
    kw = dict(
        graph=small_graph(),
        n_epochs=2,
        batch_size=8,
        warmup=3,
        n_records=5,
        acp=False,
        acp_lag=2,
        cp_init=0.2,
        weight_decay=0.01,
        progress=False,
        seed=4,
    )
    kw.update(T=2, K=5) if cls is DTM else kw.update(K_total=10)
    m = cls(**kw)
    steps = reference_fit(cls(**kw), X)
    m.fit(X)
    assert_same_training(m, steps)


def test_training_on_the_digits_torus_equals_the_state_based_loop():
    from heatbath.data.digits import binarized_digits

    X = binarized_digits().X_train.astype(np.uint8)[:90]
    kw = dict(
        graph=torus_graph(12, 64, image_shape=(8, 8)),
        T=2,
        K=5,
        n_epochs=1,
        batch_size=40,
        warmup=3,
        n_records=6,
        acp=False,
        acp_lag=2,
        cp_init=0.1,
        progress=False,
        seed=9,
    )
    m = DTM(**kw)
    steps = reference_fit(DTM(**kw), X)
    m.fit(X)
    assert_same_training(m, steps)


def test_no_latents_positive_phase_uses_the_data_alone():
    # MEBM without latents: the positive moments are the data's; a fully visible two-node graph
    g = make_graph(2, [0], [1], visible=[1, 0], colours=[0, 1])
    X = np.array([[1, 0], [1, 1], [1, 0], [0, 0]] * 4, dtype=np.uint8)
    kw = dict(
        graph=g,
        K_total=4,
        n_epochs=2,
        batch_size=16,
        n_records=4,
        acp_lag=2,
        acp=False,
        learning_rate=0.1,
        progress=False,
    )
    m = MEBM(**kw).fit(X)
    assert_same_training(m, reference_fit(MEBM(**kw), X))


# ---------------------------------------------------------------------------
# GPU: the CUDA path against the CPU path
# ---------------------------------------------------------------------------


@pytest.mark.gpu
def test_cuda_kernels_match_cpu():
    import cupy as cp

    rng = np.random.default_rng(3)
    for chains in (33, 250, 1000):
        bits = (rng.random((chains, 70)) < 0.5).astype(np.uint8)
        w = kern.pack_rows(bits)
        wd = kern.pack_rows(cp.asarray(bits))
        np.testing.assert_array_equal(wd.get(), w)
        s = random_state(70, chains, chains)
        np.testing.assert_array_equal(
            kern.unpack_rows(cp.asarray(s), chains).get(), kern.unpack_rows(s, chains)
        )
        nodes = np.arange(60, dtype=np.int32)
        ei, ej = rng.integers(0, 70, 200).astype(np.int32), rng.integers(0, 70, 200).astype(np.int32)
        up, ag = np.zeros(60, np.int64), np.zeros(200, np.int64)
        dev = [cp.asarray(a) for a in (nodes, up, ei, ej, ag)]
        for _ in range(2):
            kern.count_moments(s, chains, nodes, up, ei, ej, ag)
            kern.count_moments(cp.asarray(s), chains, *dev)
        np.testing.assert_array_equal(dev[1].get(), up)
        np.testing.assert_array_equal(dev[4].get(), ag)
    n, E = 20, 45
    pos = (rng.integers(0, 38, n), rng.integers(0, 38, E), 37)
    neg = (rng.integers(0, 500, n), rng.integers(0, 500, E), 499)
    p = {
        k: rng.normal(0, 0.1, E if k[-1] == "w" else n) ** (2 if k[0] == "v" else 1)
        for k in ("w", "mw", "vw", "b", "mb", "vb")
    }
    pd = {k: cp.asarray(v) for k, v in p.items()}
    ei, ej = rng.integers(0, n, E).astype(np.int32), rng.integers(0, n, E).astype(np.int32)
    epos = np.arange(2 * E, dtype=np.int64)
    ew, eb = np.zeros(2 * E, np.float32), np.zeros(n, np.float32)
    ewd, ebd = cp.zeros(2 * E, cp.float32), cp.zeros(n, cp.float32)
    for t in (1, 2):
        args = (0.01, 0.3, 0.02, 0.9, 0.999, 1 - 0.9**t, 1 - 0.999**t, 1e-8)
        kern.adam_step(ei, ej, pos, neg, p, *args, ew, epos, eb)
        kern.adam_step(
            cp.asarray(ei),
            cp.asarray(ej),
            tuple(cp.asarray(a) for a in pos[:2]) + (pos[2],),
            tuple(cp.asarray(a) for a in neg[:2]) + (neg[2],),
            pd,
            *args,
            ewd,
            cp.asarray(epos),
            ebd,
        )
    for k in p:
        np.testing.assert_array_equal(pd[k].get(), p[k], err_msg=k)
    np.testing.assert_array_equal(ewd.get(), ew)
    np.testing.assert_array_equal(ebd.get(), eb)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [DTM, MEBM])
def test_cuda_training_and_sampling_match_cpu(cls):
    from heatbath.data.digits import binarized_digits

    X = binarized_digits().X_train.astype(np.uint8)[:200]
    kw = dict(
        graph=torus_graph(12, 64, image_shape=(8, 8)),
        n_epochs=2,
        batch_size=64,
        warmup=3,
        n_records=6,
        acp_lag=2,
        progress=False,
        seed=5,
    )
    kw.update(T=3, K=6) if cls is DTM else kw.update(K_total=12)
    a = cls(device="cpu", **kw).fit(X)
    b = cls(device="cuda", **kw).fit(X)
    for sa, sb in zip(a.steps_, b.steps_):
        for name, arr in sa.state_arrays().items():
            np.testing.assert_array_equal(sb.state_arrays()[name], arr, err_msg=name)
        assert sa.cp == sb.cp
    assert a.history_ == b.history_
    for n in (100, 1000):
        xa, xb = a.sample(n, seed=3), b.sample(n, seed=3)
        assert isinstance(xb, np.ndarray) and xb.dtype == np.uint8
        np.testing.assert_array_equal(xb, xa)
    ra = a.mixing(X[:50], n_chains=40, n_sweeps=12) if cls is DTM else a.mixing(n_chains=40, n_sweeps=12)
    rb = b.mixing(X[:50], n_chains=40, n_sweeps=12) if cls is DTM else b.mixing(n_chains=40, n_sweeps=12)
    for p, q in zip(ra, rb):
        np.testing.assert_array_equal(q.rho, p.rho)
    if cls is DTM:
        sa, sb = a.sample(70, seed=4, return_steps=True), b.sample(70, seed=4, return_steps=True)
        for p, q in zip(sa, sb):
            np.testing.assert_array_equal(q, p)
        np.testing.assert_array_equal(b.sample_step(2, sa[1], seed=6), a.sample_step(2, sa[1], seed=6))
        beta = (0.5, 1.0)
        np.testing.assert_array_equal(b.sample(50, seed=7, beta=beta), a.sample(50, seed=7, beta=beta))


@pytest.mark.gpu
def test_cuda_checkpoint_continues_like_cpu(tmp_path):
    """A model trained on the CPU and saved, then loaded on the GPU and on the
    CPU and trained on: the same parameters and samples."""
    from heatbath.data.digits import binarized_digits

    X = binarized_digits().X_train.astype(np.uint8)[:120]
    kw = dict(graph=torus_graph(12, 64, image_shape=(8, 8)), T=2, K=4, n_epochs=1, batch_size=50, warmup=2,
              n_records=4, acp_lag=2, progress=False, seed=8)
    path = DTM(**kw).fit(X).save(str(tmp_path / "dtm"))
    a = DTM.load(path).set_params(n_epochs=2).fit(X)
    b = DTM.load(path, device="cuda").set_params(n_epochs=2).fit(X)
    for sa, sb in zip(a.steps_, b.steps_):
        for name, arr in sa.state_arrays().items():
            np.testing.assert_array_equal(sb.state_arrays()[name], arr, err_msg=name)
    np.testing.assert_array_equal(b.sample(300, seed=1), a.sample(300, seed=1))
