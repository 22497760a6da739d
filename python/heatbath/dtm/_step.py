"""One reverse step of a DTM (or the whole MEBM) as a sparse Boltzmann
machine: the weights, biases and Adam state of the step, its Gibbs engines
(:class:`heatbath.ebm.SparseIsing`, one per chain count, reseeded per
batch), its moments and contrastive gradient; and the packed-bit plumbing
between 0/1 arrays and the engines' packed rows."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _backend
from .. import random as hr
from ..ebm.graphs import graph_from_edges
from ..ebm.packed_rows import get_rows, reseed, set_rows, unpack_rows
from ..ebm.sparse import SparseIsing, _pack_spins
from .graphs import DTMGraph


class Draws:
    """Consecutive Philox draws on one (seed, stream)."""

    def __init__(self, seed: int, stream: int) -> None:
        self.seed, self.stream, self.offset = int(seed), int(stream), 0

    def uniform(self, shape: tuple) -> np.ndarray:
        n = int(np.prod(shape))
        u = hr.uniform(shape, self.seed, offset=self.offset, stream=self.stream, dtype="float64")
        self.offset += n
        return u

    def spins(self, shape: tuple) -> np.ndarray:
        return np.where(self.uniform(shape) < 0.5, 1, -1).astype(np.int8)


def pack_bits(x: np.ndarray, device: str):
    """0/1 rows (n_chains, n) -> packed rows uint32 (n, ceil(n_chains / 32))
    on ``device`` (the engines' layout: bit c % 32 of word c // 32 is chain c)."""
    w = _pack_spins(np.ascontiguousarray(to_spins(x).T))
    return _backend.cupy_module().asarray(w) if device == "cuda" else w


def unpack_bits(words: Any, n_chains: int) -> np.ndarray:
    """Packed rows -> uint8 0/1 (n_chains, n_rows), numpy."""
    return (unpack_rows(words, n_chains) > 0).view(np.uint8)


def random_words(n_rows: int, n_chains: int, seed: int, stream: int, device: str):
    """Fair random packed rows uint32 (n_rows, ceil(n_chains / 32)), drawn word
    column by word column (chain-major), so that a chain's bits do not depend
    on the chain count."""
    W = (n_chains + 31) // 32
    w = hr.integers(0, 1 << 32, (W, n_rows), seed, stream=stream, device="cuda" if device == "cuda" else None)
    return w.T.astype(np.uint32)


class StepEBM:
    """One sparse Boltzmann machine over the graph nodes, plus (for a DTM
    step) one input node per visible node, coupled to it by a fixed weight.

    Node numbering in the engine: graph nodes 0..n_nodes-1, then input k at
    n_nodes + k."""

    def __init__(self, graph: DTMGraph, coupling: Optional[float], device: str) -> None:
        self.graph = graph
        self.coupling = None if coupling is None else float(coupling)
        self.device = device
        n, nv = graph.n_nodes, graph.n_visible
        self.n_in = nv if coupling is not None else 0
        self.N = n + self.n_in
        self.inputs = n + np.arange(self.n_in, dtype=np.int64)
        fi = np.concatenate([graph.edges_i, graph.visible[: self.n_in]])
        fj = np.concatenate([graph.edges_j, self.inputs])
        self._order = np.lexsort((fj, fi))  # canonical (CSR) edge e is edge _order[e] of [graph, inputs]
        self._fi, self._fj = fi[self._order], fj[self._order]
        ncol = max(2, int(graph.colours.max()) + 1)
        self.colours = np.concatenate(
            [graph.colours, (graph.colours[graph.visible[: self.n_in]] + 1) % ncol]
        ).astype(np.int32)
        E = graph.n_edges
        self.weights = np.zeros(E)
        self.bias = np.zeros(n)
        self._mw, self._vw = np.zeros(E), np.zeros(E)
        self._mb, self._vb = np.zeros(n), np.zeros(n)
        self.adam_t = 0
        self.cp = 0.0
        self._engines: dict = {}
        self._samplers: list = []  # idle [engine, version] pairs for sampling (see sampler)
        self._version = 0
        self.last_stat: Optional[np.ndarray] = None

    # ---- engine ---------------------------------------------------------
    def full_weights(self) -> np.ndarray:
        w = np.concatenate([self.weights, np.full(self.n_in, self.coupling if self.n_in else 0.0)])
        return w[self._order]

    def full_bias(self) -> np.ndarray:
        return np.concatenate([self.bias, np.zeros(self.n_in)])

    def new_engine(self, n_chains: int, seed: int) -> SparseIsing:
        csr = graph_from_edges(self.N, self._fi, self._fj, self.full_weights(), "edges")
        return SparseIsing(csr, self.full_bias(), n_chains=n_chains, colouring=self.colours, seed=seed,
                           device=self.device)

    def engine(self, key: tuple, n_chains: int, seed: int) -> SparseIsing:
        """A cached engine (kept so that its chains and sweep counter persist),
        brought up to date with the parameters."""
        ent = self._engines.get(key)
        if ent is None:
            eng = self.new_engine(n_chains, seed)
            self._engines[key] = [eng, self._version]
            return eng
        eng, ver = ent
        if ver != self._version:
            eng.set_parameters(self.full_weights(), self.full_bias())
            ent[1] = self._version
        return eng

    def sampler(self, n_chains: int) -> SparseIsing:
        """An engine for sampling ``n_chains`` chains, inputs clamped (their rows
        are written per call), parameters up to date; built once and reused.
        Take it with this method and hand it back with :meth:`release`: a
        second caller meanwhile (another thread) gets an engine of its own."""
        try:
            ent = self._samplers.pop()
        except IndexError:
            ent = None
        if ent is None or ent[0].n_chains != n_chains:
            eng = self.new_engine(n_chains, 0)
            if self.n_in:
                eng.clamp(self.inputs, np.ones(self.n_in, dtype=np.int8))
            return eng
        eng, ver = ent
        if ver != self._version:
            eng.set_parameters(self.full_weights(), self.full_bias())
        return eng

    def release(self, eng: SparseIsing) -> None:
        """Keep ``eng`` (from :meth:`sampler`) for the next sampling call."""
        self._samplers[:] = [[eng, self._version]]

    def draw(self, n: int, seed: int, rows: list, k: int, keep: int, beta: Optional[tuple],
             out_nodes: np.ndarray) -> Any:
        """Run ``n`` chains on the sampling engine: reseeded with ``seed``, the
        packed ``rows`` ((nodes, words) pairs) written, ``k`` sweeps (beta
        annealed over them when given). Returns the packed rows of
        ``out_nodes``, or with ``keep`` the states of ``keep`` further
        consecutive sweeps (keep, n, N) int8."""
        eng = self.sampler(n)
        reseed(eng, seed)
        for nodes, words in rows:
            set_rows(eng, nodes, words)
        S = self.sweeps(eng, k, keep, beta)
        out = S if keep else get_rows(eng, out_nodes)
        self.release(eng)
        return out

    @staticmethod
    def run(eng: SparseIsing, state0: Optional[np.ndarray], clamp_nodes: np.ndarray, clamp_vals: Any,
            warmup: int, n_records: int, beta: Optional[tuple] = None) -> np.ndarray:
        """Set the state (unless None), clamp, run ``warmup`` sweeps (beta
        annealed over them when given) and record ``n_records`` consecutive
        sweeps; returns states (n_records, n_chains, N) int8."""
        eng.unclamp()
        if state0 is not None:
            eng.state = state0
        if clamp_nodes.size:
            eng.clamp(clamp_nodes, clamp_vals)
        S = StepEBM.sweeps(eng, warmup, n_records, beta)
        return eng.state[None] if S is None else S

    @staticmethod
    def sweeps(eng: SparseIsing, warmup: int, n_records: int, beta: Optional[tuple] = None) -> Any:
        """Run ``warmup`` sweeps (beta annealed over them when given), then
        record ``n_records`` consecutive sweeps: states (n_records, n_chains, N)
        int8; with n_records = 0 nothing is read (returns None)."""
        if beta is None:
            eng.beta = 1.0
            eng.sweep(warmup)
        else:
            for b in np.linspace(beta[0], beta[1], max(warmup, 1))[:warmup]:
                eng.beta = float(b)
                eng.sweep(1)
        if n_records == 0:
            return None
        out = np.empty((n_records, eng.n_chains, eng.n_nodes), dtype=np.int8)
        for r in range(n_records):
            eng.sweep(1)
            out[r] = eng.state
        return out

    # ---- learning ---------------------------------------------------------
    def moments(self, S: np.ndarray) -> tuple:
        n = self.graph.n_nodes
        X = S.reshape(-1, S.shape[-1])[:, :n].astype(np.float32)
        m1 = X.mean(axis=0, dtype=np.float64)
        G = X.T @ X  # float32 sums of +/-1 products: exact below 2^24 records
        return m1, G[self.graph.edges_i, self.graph.edges_j].astype(np.float64) / X.shape[0]

    def adam(self, gw: np.ndarray, gb: np.ndarray, lr: float, b1: float = 0.9, b2: float = 0.999,
             eps: float = 1e-8) -> None:
        """One Adam ascent step on (weights, bias)."""
        self.adam_t += 1
        c1, c2 = 1 - b1 ** self.adam_t, 1 - b2 ** self.adam_t
        for p, g, m, v in ((self.weights, gw, self._mw, self._vw), (self.bias, gb, self._mb, self._vb)):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p += lr * (m / c1) / (np.sqrt(v / c2) + eps)
        self._version += 1

    def gradient(self, S_pos: np.ndarray, S_neg: np.ndarray, weight_decay: float) -> tuple:
        p1, p2 = self.moments(S_pos)
        n1, n2 = self.moments(S_neg)
        gw = p2 - n2 - weight_decay * self.weights
        if self.cp:
            gw += self.cp * (n1[self.graph.edges_i] * n1[self.graph.edges_j] - n2)
        return gw, p1 - n1

    def state_arrays(self) -> dict:
        return {"w": self.weights, "b": self.bias, "mw": self._mw, "vw": self._vw, "mb": self._mb,
                "vb": self._vb}


def to_spins(x: np.ndarray) -> np.ndarray:
    return (2 * x.astype(np.int8) - 1).astype(np.int8)
