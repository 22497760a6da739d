"""One reverse step of a DTM (or the whole MEBM) as a sparse Boltzmann
machine: the weights, biases and Adam state of the step (on the model's
device), its Gibbs engines (:class:`heatbath.ebm.SparseIsing` sharing the
step's float32 parameters on the device, one per chain count), the moment
counters and the Adam kernel of :mod:`heatbath.dtm._kernels`; and the
packed-bit plumbing between 0/1 arrays and the engines' packed rows."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _backend
from .. import random as hr
from ..ebm.graphs import blocks_from_colouring, graph_from_edges
from ..ebm.packed_rows import reseed
from ..ebm.sparse import SparseIsing
from . import _kernels as kern
from .graphs import DTMGraph
from .mixing import chain_statistic


class Draws:
    """Consecutive Philox draws on one (seed, stream)."""

    def __init__(self, seed: int, stream: int) -> None:
        self.seed, self.stream, self.offset = int(seed), int(stream), 0

    def below(self, shape: tuple, p: float, device: Optional[str] = None) -> Any:
        """uint8 (shape): 1 where the next float64 uniform is below ``p`` (a
        numpy or, with device='cuda', a cupy array)."""
        n = int(np.prod(shape))
        u = hr.uniform(shape, self.seed, offset=self.offset, stream=self.stream, dtype="float64",
                       device="cuda" if device == "cuda" else None)
        self.offset += n
        return (u < p).astype(np.uint8)


def pack_bits(x: Any, device: str):
    """0/1 rows (n_chains, n) -> packed rows uint32 (n, ceil(n_chains / 32))
    on ``device`` (the engines' layout: bit c % 32 of word c // 32 is chain c)."""
    xp = _backend.cupy_module() if device == "cuda" else np
    return kern.pack_rows(xp.ascontiguousarray(xp.asarray(x), dtype=np.uint8))


def unpack_bits(words: Any, n_chains: int) -> np.ndarray:
    """Packed rows -> uint8 0/1 (n_chains, n_rows), numpy (unpacked on the
    device that holds the words, then copied once)."""
    out = kern.unpack_rows(words, n_chains)
    return out.get() if _backend.is_cupy(out) else out


def random_words(n_rows: int, n_chains: int, seed: int, stream: int, device: str):
    """Fair random packed rows uint32 (n_rows, ceil(n_chains / 32)), drawn word
    column by word column (chain-major), so that a chain's bits do not depend
    on the chain count."""
    W = (n_chains + 31) // 32
    w = hr.integers(0, 1 << 32, (W, n_rows), seed, stream=stream, device="cuda" if device == "cuda" else None)
    return w.T.astype(np.uint32, order="C")


class StepEngine(SparseIsing):
    """The Gibbs engine of one DTM step: a :class:`SparseIsing` (CSR) whose
    couplings and biases are the float32 arrays of its step, shared by all the
    step's engines and updated in place on the device by the Adam kernel;
    update schedules are cached per set of clamped nodes and beta is set as
    one value on the device. Its ``graph`` keeps the structure; read the
    parameters from the step."""

    def __init__(self, step: "StepEBM", n_chains: int, seed: int) -> None:
        self._step = step
        super().__init__(step.csr, None, n_chains=n_chains, colouring=step.colours, seed=seed,
                         device=step.device)
        self._beta_value: Optional[float] = 1.0

    def _reschedule(self) -> None:
        step = self._step
        order, ptr = step.schedule(self.clamped)
        self._k = {"row": step.row, "col": step.col, "w": step.w32, "bias": step.b32, "order": order,
                   "block_ptr": ptr}

    def set_clamped(self, nodes: np.ndarray) -> None:
        """Clamp exactly ``nodes`` (host indices), keeping their current rows."""
        self.clamped[:] = False
        self.clamped[nodes] = True
        self._reschedule()

    def set_beta_value(self, b: float) -> None:
        """beta = b in every chain, written on the device (no copy)."""
        if self._beta_value == b:
            return
        self._beta.fill(b)
        if self._beta_dev is not self._beta:
            self._beta_dev.fill(b)
        self._beta_value = b

    def set_parameters(self, edge_weights: Any = None, bias: Any = None) -> None:
        raise TypeError("the engine of a DTM step takes its parameters from the step: use "
                        "StepEBM.set_parameters")

    @property
    def beta(self) -> np.ndarray:
        return self._beta.astype(np.float64)

    @beta.setter
    def beta(self, value: Any) -> None:
        SparseIsing.beta.fset(self, value)
        self._beta_value = None


class StepEBM:
    """One sparse Boltzmann machine over the graph nodes, plus (for a DTM
    step) one input node per visible node, coupled to it by a fixed weight.

    Node numbering in the engine: graph nodes 0..n_nodes-1, then input k at
    n_nodes + k. The parameters (float64) and their Adam moments live on the
    model's device, as do the engines' float32 copies (``w32``, ``b32``),
    which the Adam kernel rewrites; ``weights`` and ``bias`` return numpy
    copies."""

    _PARAMS = ("w", "mw", "vw", "b", "mb", "vb")

    def __init__(self, graph: DTMGraph, coupling: Optional[float], device: str) -> None:
        self.graph = graph
        self.coupling = None if coupling is None else float(coupling)
        self.device = device
        xp = self.xp = _backend.cupy_module() if device == "cuda" else np
        n, nv = graph.n_nodes, graph.n_visible
        self.n_in = nv if coupling is not None else 0
        self.N = n + self.n_in
        self.inputs = n + np.arange(self.n_in, dtype=np.int64)
        fi = np.concatenate([graph.edges_i, graph.visible[: self.n_in]])
        fj = np.concatenate([graph.edges_j, self.inputs])
        ncol = max(2, int(graph.colours.max()) + 1)
        self.colours = np.concatenate(
            [graph.colours, (graph.colours[graph.visible[: self.n_in]] + 1) % ncol]
        ).astype(np.int32)
        E = graph.n_edges
        fw = np.concatenate([np.zeros(E), np.full(self.n_in, self.coupling if self.n_in else 0.0)])
        self.csr = graph_from_edges(self.N, fi, fj, fw, "edges")
        # CSR positions of both entries of each graph edge (i, j), interleaved
        key = np.repeat(np.arange(self.N, dtype=np.int64), np.diff(self.csr.row)) * self.N + self.csr.col
        ei, ej = graph.edges_i.astype(np.int64), graph.edges_j.astype(np.int64)
        pos = np.stack([np.searchsorted(key, ei * self.N + ej), np.searchsorted(key, ej * self.N + ei)], 1)
        dev = xp.asarray
        self.row, self.col = dev(self.csr.row), dev(self.csr.col)
        self.w32 = dev(self.csr.weights.copy())
        self.b32 = xp.zeros(self.N, dtype=np.float32)
        self.epos = dev(pos.reshape(-1))
        self.edge_i, self.edge_j = dev(graph.edges_i.astype(np.int32)), dev(graph.edges_j.astype(np.int32))
        self.nodes = dev(np.arange(n, dtype=np.int32))
        self.index = {"visible": dev(graph.visible.astype(np.int64)), "inputs": dev(self.inputs),
                      "latent": dev(graph.latent.astype(np.int64)),
                      "all": dev(np.arange(self.N, dtype=np.int64))}
        self._p = {k: xp.zeros(E if k in ("w", "mw", "vw") else n) for k in self._PARAMS}
        self.adam_t = 0
        self.cp = 0.0
        self._schedules: dict = {}
        self._engines: dict = {}
        self._samplers: list = []  # idle engines for sampling (see sampler)
        self._counts: dict = {}
        self._scratch: dict = {}
        self._last_rows: Optional[tuple] = None  # (rows (n_records, n_visible, words), n_chains)
        self._last_stat: Optional[np.ndarray] = None

    # ---- parameters ---------------------------------------------------------
    def _host(self, a: Any) -> np.ndarray:
        return a.get() if _backend.is_cupy(a) else a.copy()

    @property
    def weights(self) -> np.ndarray:
        """Couplings of the graph edges (n_edges,), float64 (a numpy copy)."""
        return self._host(self._p["w"])

    @property
    def bias(self) -> np.ndarray:
        """Biases of the graph nodes (n_nodes,), float64 (a numpy copy)."""
        return self._host(self._p["b"])

    def set_parameters(self, weights: Any = None, bias: Any = None) -> None:
        """Replace the couplings and/or biases (the engines follow)."""
        self.load_state_arrays({k: v for k, v in (("w", weights), ("b", bias)) if v is not None})

    def state_arrays(self) -> dict:
        """Parameters and Adam moments as numpy copies: w, mw, vw (n_edges,),
        b, mb, vb (n_nodes,)."""
        return {k: self._host(self._p[k]) for k in self._PARAMS}

    def load_state_arrays(self, arrays: dict) -> None:
        """Write some of the arrays of :meth:`state_arrays` (shapes checked)
        and bring the engines' float32 copies up to date."""
        for k, v in arrays.items():
            a = np.asarray(v, dtype=np.float64)
            if a.shape != self._p[k].shape:
                raise ValueError(f"'{k}': expected shape {self._p[k].shape}, got {a.shape}")
            self._p[k][...] = self.xp.asarray(a)
        n = self.graph.n_nodes
        w32 = self._p["w"].astype(np.float32)
        self.w32[self.epos[0::2]] = w32
        self.w32[self.epos[1::2]] = w32
        self.b32[:n] = self._p["b"].astype(np.float32)

    # ---- engines --------------------------------------------------------------
    def schedule(self, clamped: np.ndarray) -> tuple:
        """(order on the device, block offsets) of the colouring without the
        ``clamped`` nodes; one per set of clamped nodes, shared by the engines."""
        key = np.packbits(clamped).tobytes()
        sch = self._schedules.get(key)
        if sch is None:
            order, ptr = blocks_from_colouring(self.colours, clamped)
            sch = self._schedules[key] = (self.xp.asarray(order), ptr)
        return sch

    def engine(self, key: tuple, n_chains: int, seed: int) -> StepEngine:
        """A cached engine (kept so that its chains and sweep counter persist)."""
        eng = self._engines.get(key)
        if eng is None:
            eng = self._engines[key] = StepEngine(self, n_chains, seed)
        return eng

    def sampler(self, n_chains: int) -> StepEngine:
        """An engine for sampling ``n_chains`` chains, inputs clamped (their rows
        are written per call); built once and reused. Take it with this
        method and hand it back with :meth:`release`: a second caller
        meanwhile (another thread) gets an engine of its own."""
        try:
            eng = self._samplers.pop()
        except IndexError:
            eng = None
        if eng is None or eng.n_chains != n_chains:
            eng = StepEngine(self, n_chains, 0)
            eng.set_clamped(self.inputs)
        return eng

    def release(self, eng: StepEngine) -> None:
        """Keep ``eng`` (from :meth:`sampler`) for the next sampling call."""
        self._samplers[:] = [eng]

    def draw(self, n: int, seed: int, rows: list, k: int, keep: int, beta: Optional[tuple], out_nodes: str
             ) -> Any:
        """Run ``n`` chains on the sampling engine: reseeded with ``seed``, the
        packed ``rows`` ((index name, words) pairs) written, ``k`` sweeps
        (beta annealed over them when given). Returns the packed rows of
        ``out_nodes`` (an index name), or with ``keep`` the states of
        ``keep`` further consecutive sweeps (keep, n, N) int8."""
        eng = self.sampler(n)
        reseed(eng, seed)
        for name, words in rows:
            eng._s[self.index[name]] = words
        S = self.sweeps(eng, k, keep, beta)
        out = S if keep else eng._s[self.index[out_nodes]]
        self.release(eng)
        return out

    @staticmethod
    def sweeps(eng: StepEngine, warmup: int, n_records: int, beta: Optional[tuple] = None) -> Any:
        """Run ``warmup`` sweeps (beta annealed over them when given), then
        record ``n_records`` consecutive sweeps: states (n_records, n_chains, N)
        int8; with n_records = 0 nothing is read (returns None)."""
        if beta is None:
            eng.set_beta_value(1.0)
            eng.sweep(warmup)
        else:
            # np.linspace(beta[0], beta[1], warmup), one value at a time (no table of warmup values)
            b0, b1 = float(beta[0]), float(beta[1])
            step = (b1 - b0) / (warmup - 1) if warmup > 1 else 0.0
            for i in range(warmup):
                b = b1 if i == warmup - 1 and warmup > 1 else i * step + b0
                eng.set_beta_value(b)
                eng.sweep(1)
        if n_records == 0:
            return None
        out = np.empty((n_records, eng.n_chains, eng.n_nodes), dtype=np.int8)
        for r in range(n_records):
            eng.sweep(1)
            out[r] = eng.state
        return out

    def scratch(self, n_chains: int) -> Any:
        """A packed state buffer (N, ceil(n_chains / 32)) on the device, reused."""
        buf = self._scratch.get(n_chains)
        if buf is None:
            buf = self._scratch[n_chains] = self.xp.zeros((self.N, (n_chains + 31) // 32), dtype=np.uint32)
        return buf

    # ---- learning ---------------------------------------------------------
    def counts(self, phase: str, n_chains: int) -> list:
        """Moment counters [up (n_nodes,), agree (n_edges,), values] of a phase
        ("pos" or "neg"), zeroed; buffers reused per chain count."""
        c = self._counts.get((phase, n_chains))
        if c is None:
            xp = self.xp
            c = self._counts[(phase, n_chains)] = [xp.zeros(self.graph.n_nodes, dtype=np.int64),
                                                   xp.zeros(self.graph.n_edges, dtype=np.int64), 0]
        else:
            c[0].fill(0)
            c[1].fill(0)
            c[2] = 0
        return c

    def count(self, state: Any, n_chains: int, c: list) -> None:
        """Add the moments of the graph nodes and edges of packed ``state`` to
        the counters ``c`` (from :meth:`counts`)."""
        kern.count_moments(state, n_chains, self.nodes, c[0], self.edge_i, self.edge_j, c[1])
        c[2] += n_chains

    def record(self, eng: StepEngine, warmup: int, n_records: int, keep_rows: bool) -> list:
        """``warmup`` sweeps at beta 1, then ``n_records`` sweeps whose moments
        are counted (returned); with ``keep_rows`` the visible rows of every
        recorded sweep are kept for the mixing report (:attr:`last_stat`)."""
        eng.set_beta_value(1.0)
        eng.sweep(warmup)
        c = self.counts("neg", eng.n_chains)
        rows = None
        if keep_rows:
            vis = self.index["visible"]
            rows = self.xp.empty((n_records, vis.size, eng._s.shape[1]), dtype=np.uint32)
        for r in range(n_records):
            eng.sweep(1)
            self.count(eng._s, eng.n_chains, c)
            if rows is not None:
                rows[r] = eng._s[vis]
        if rows is not None:
            self._last_rows, self._last_stat = (rows, eng.n_chains), None
        return c

    @property
    def last_stat(self) -> Optional[np.ndarray]:
        """The mixing statistic (n_records, n_chains) of the negative chains of
        the last batch whose rows were kept (:func:`chain_statistic` of
        the visible spins), or None."""
        if self._last_stat is None and self._last_rows is not None:
            rows, C = self._last_rows
            rows = rows.get() if _backend.is_cupy(rows) else rows
            S = np.stack([2 * kern.unpack_rows(np.ascontiguousarray(r), C).view(np.int8) - 1 for r in rows])
            self._last_stat = chain_statistic(S)
        return self._last_stat

    def adam(self, pos: list, neg: list, lr: float, weight_decay: float, b1: float = 0.9, b2: float = 0.999,
             eps: float = 1e-8) -> None:
        """One Adam ascent step on (weights, bias) along the contrastive
        gradient ``<s_i s_j>_+ - <s_i s_j>_- - weight_decay w (+ cp (<s_i>_-
        <s_j>_- - <s_i s_j>_-))``, ``<s_i>_+ - <s_i>_-``, from the counters of
        the two phases; the engines' float32 copies follow."""
        self.adam_t += 1
        c1, c2 = 1 - b1 ** self.adam_t, 1 - b2 ** self.adam_t
        kern.adam_step(self.edge_i, self.edge_j, pos, neg, self._p, weight_decay, self.cp, lr, b1, b2, c1, c2,
                       eps, self.w32, self.epos, self.b32)


def _spins(x: np.ndarray) -> np.ndarray:
    return (2 * x.astype(np.int8) - 1).astype(np.int8)
