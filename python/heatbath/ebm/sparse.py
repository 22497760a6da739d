"""Sparse-graph Boltzmann machines with spin (+/-1) or categorical (Potts,
K-state) nodes, sampled by block Gibbs (heat-bath) sweeps on CPU and GPU.

Energies (J symmetric, zero diagonal; beta per chain)::

    Ising:  E(s) = -sum_{i<j} J_ij s_i s_j - sum_i b_i s_i,        s_i = +/-1
    Potts:  E(s) = -sum_{i<j} J_ij [s_i == s_j] - sum_i b_i[s_i],  s_i in 0..K-1

    p(s) ~ exp(-beta E(s))

The nodes are split into independent blocks by a graph colouring (DSATUR by
default, or greedy, or given and then checked); a sweep updates the blocks in
turn, every node of a block in parallel, for all chains. States are stored
``[n_nodes, n_chains]`` so each update reads its neighbours' states of
consecutive chains contiguously; spins are packed one bit per chain (32
chains per uint32 word), Potts states one byte per chain. Clamped nodes keep their values (conditioning
on observed nodes). The update of node i in chain c at sweep t is a pure
function of (seed, t, i, c) (Philox stream t * 2^32 + i, element c): the same
on any thread count, any chain count and on the GPU.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import _backend, _core
from .._guard import Guarded, as_float_array, check_values, locked
from ..random import as_seed, integers
from .graphs import (
    _F32_MAX,
    CSRGraph,
    _index_array,
    blocks_from_colouring,
    check_colouring,
    check_graph,
    finite_f32,
    couplings_to_graph,
    dsatur_colouring,
    graph_from_networkx,
    greedy_colouring,
)
from ._sparse_parts import (
    SparseSamples,
    _aligned64,
    _as_int,
    _edges_graph,
    _pack_spins,
    _unpack_spins,
)
from .lattice import per_chain_beta

__all__ = ["SparseIsing", "SparsePotts", "SparseSamples"]


class _SparseModel(Guarded):
    """Shared machinery of :class:`SparseIsing` and :class:`SparsePotts`.

    One object may be used from several threads: its methods take the
    object's lock, so concurrent calls run one after another (the result is
    that of some sequential order). Long calls (``sweep``, ``sample``,
    ``fit``) can be interrupted by Ctrl-C (KeyboardInterrupt); the object then
    holds the state of the sweeps done, and ``sweeps_done`` counts them.
    """

    _potts = False

    def __init__(
        self,
        graph: CSRGraph,
        bias: Any,
        beta: Any,
        n_chains: Optional[int],
        colouring: Any,
        seed: Any,
        storage: str,
        device: str,
        K: int,
        chain_offset: Any = 0,
    ) -> None:
        self.chain_offset = _as_int(chain_offset, "chain_offset", 0, 2**48)
        if self.chain_offset % 256:
            raise ValueError(f"'chain_offset': must be a multiple of 256, got {self.chain_offset}")
        if storage not in ("csr", "ell"):
            raise ValueError(f"'storage': expected 'csr' or 'ell', got {storage!r}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"'device': expected 'cpu' or 'cuda', got {device!r}")
        graph = check_graph(graph, "couplings")
        self.graph = graph
        self.n_nodes = graph.n
        self.K = K
        self.device = device
        self.storage = storage
        self.seed = as_seed(seed)
        self._kernel_graph = graph.to_ell() if storage == "ell" else graph
        bshape = (graph.n, K) if self._potts else (graph.n,)
        if bias is None:
            b = np.zeros(bshape, dtype=np.float32)
        else:
            b = np.asarray(bias)
            if b.dtype.kind not in "biuf":
                raise TypeError(f"'bias': expected real values, got dtype {b.dtype}")
            if b.shape != bshape:
                raise ValueError(f"'bias': expected shape {bshape}, got {b.shape}")
            b = finite_f32(b, "bias")
        self._bias = np.ascontiguousarray(b, dtype=np.float32)
        bt = as_float_array(beta, "beta")
        if bt.ndim > 1:
            raise ValueError(f"'beta': expected a float or a 1-D array, got shape {bt.shape}")
        if n_chains is None:
            n_chains = bt.size if bt.ndim == 1 else 1
        self.n_chains = _as_int(n_chains, "n_chains", 1, 2**40)
        check_values(self.n_chains * (graph.n + 1), "n_chains", f"{self.n_chains} chains of {graph.n} nodes")
        self.beta = beta
        if colouring is None or (isinstance(colouring, str) and colouring == "dsatur"):
            self.colours = dsatur_colouring(graph)
        elif isinstance(colouring, str) and colouring == "greedy":
            self.colours = greedy_colouring(graph)
        elif isinstance(colouring, str):
            raise ValueError(
                f"'colouring': expected 'dsatur', 'greedy', a colour per node or a list of blocks, "
                f"got {colouring!r}"
            )
        else:
            self.colours = self._colours_from_user(colouring)
        self.clamped = np.zeros(graph.n, dtype=bool)
        self._sweep = 0
        self._reschedule()
        # (chain, node) order: a chain's initial state does not depend on the chain count
        init = integers(
            0, K, shape=(self.n_chains, graph.n), seed=self.seed, offset=self.chain_offset * graph.n,
            stream=(1 << 63) + 2,
        ).T
        if self._potts:
            s = np.ascontiguousarray(init, dtype=np.uint8)
        else:
            s = _pack_spins((2 * init - 1).astype(np.int8))
        self._s = self._state_to_device(s)

    # ---- construction helpers ---------------------------------------------
    def _colours_from_user(self, colouring: Any) -> np.ndarray:
        arr = None
        try:
            arr = np.asarray(colouring)
        except (ValueError, TypeError):
            arr = None
        if arr is not None and arr.dtype.kind in "iu" and arr.ndim == 1 and arr.shape == (self.n_nodes,):
            return check_colouring(self.graph, arr, "colouring")
        if arr is not None and arr.dtype.kind not in "iuO":
            raise TypeError(
                f"'colouring': expected 'dsatur', 'greedy', integer colours of shape ({self.n_nodes},) or a "
                f"sequence of blocks of node indices, got dtype {arr.dtype}, shape {arr.shape}"
            )
        if arr is not None and arr.dtype.kind in "iu" and arr.ndim == 1:
            raise ValueError(f"'colouring': expected one colour per node, shape ({self.n_nodes},), got {arr.shape}")
        # a sequence of blocks (lists of node indices)
        colours = np.full(self.n_nodes, -1, dtype=np.int64)
        try:
            blocks = list(colouring)
        except TypeError:
            raise TypeError(f"'colouring': expected a sequence of blocks, got {type(colouring).__name__}") from None
        for c, block in enumerate(blocks):
            try:
                idx = _index_array(np.asarray(block).reshape(-1), "colouring", self.n_nodes)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"'colouring': block {c}: {exc}") from None
            if np.any(colours[idx] >= 0):
                raise ValueError(f"'colouring': block {c} repeats a node of an earlier block")
            colours[idx] = c
        if np.any(colours < 0):
            raise ValueError(f"'colouring': the blocks miss node {int(np.flatnonzero(colours < 0)[0])}")
        return check_colouring(self.graph, colours, "colouring")

    def _to_device(self, a: np.ndarray):
        return _backend.cupy_module().asarray(a) if self.device == "cuda" else a

    def _state_to_device(self, a: np.ndarray):
        """States on the CPU start on a 64-byte boundary, so that threads
        updating different chain ranges of a node never share a cache line."""
        return self._to_device(a) if self.device == "cuda" else _aligned64(a)

    def _reschedule(self) -> None:
        order, ptr = blocks_from_colouring(self.colours, self.clamped)
        g = self._kernel_graph
        self._k = {
            "row": self._to_device(g.row),
            "col": self._to_device(g.col),
            "w": self._to_device(g.weights),
            "bias": self._to_device(self._bias.reshape(-1)),
            "order": self._to_device(order),
            "block_ptr": ptr,
        }

    @property
    def n_colours(self) -> int:
        return int(self.colours.max()) + 1 if self.colours.size else 0

    # ---- parameters ---------------------------------------------------------
    @property
    def beta(self) -> np.ndarray:
        """Inverse temperature of each chain, shape (n_chains,), float64."""
        return self._beta.astype(np.float64)

    @beta.setter
    def beta(self, value: Any) -> None:
        b = per_chain_beta(value, self.n_chains)
        bt = finite_f32(b, "beta")
        with self._lock:
            self._beta = bt
            # one beta for every chain: the GPU kernels take it by value
            self._beta_uniform = float(bt[0]) if bt.size and bool(np.all(bt == bt[0])) else float("nan")
            self._beta_dev = self._to_device(self._beta)

    @property
    def couplings(self) -> np.ndarray:
        """Dense (n, n) float64 couplings (as float32 values the sampler uses)."""
        return self.graph.dense()

    @property
    def bias(self) -> np.ndarray:
        return self._bias.astype(np.float64)

    @locked
    def set_parameters(
        self, edge_weights: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None
    ) -> None:
        """Replace the couplings of the existing edges (order of
        ``graph.edges()``) and/or the biases (finite values that fit float32)."""
        if edge_weights is not None:
            upper, lower = self._edge_positions()
            w = np.asarray(edge_weights)
            if w.shape != upper.shape:
                raise ValueError(f"'edge_weights': expected shape {upper.shape}, got {w.shape}")
            w = finite_f32(w, "edge_weights")
        if bias is not None:
            b = np.asarray(bias)
            if b.shape != self._bias.shape:
                raise ValueError(f"'bias': expected shape {self._bias.shape}, got {b.shape}")
            b = finite_f32(b, "bias")
        if edge_weights is not None:
            wc = np.empty(self.graph.col.size, dtype=np.float32)
            wc[upper] = w
            wc[lower] = w
            g = self.graph
            self.graph = CSRGraph(g.row, g.col, wc, g.n)
            self._kernel_graph = self.graph.to_ell() if self.storage == "ell" else self.graph
        if bias is not None:
            self._bias = np.ascontiguousarray(b, dtype=np.float32)
        self._reschedule()

    def _edge_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR positions of the edges (i < j, order of ``graph.edges()``) and
        of their mirror entries (j, i); computed once per graph structure."""
        cache = getattr(self, "_edge_pos", None)
        g = self.graph
        if cache is not None and cache[0] is g.row and cache[1] is g.col:
            return cache[2], cache[3]
        rows = np.repeat(np.arange(g.n, dtype=np.int64), np.diff(g.row))
        cols = g.col.astype(np.int64)
        upper = np.flatnonzero(rows < cols)
        key = rows * g.n + cols
        order = np.argsort(key, kind="stable")
        lower = order[np.searchsorted(key[order], cols[upper] * g.n + rows[upper])]
        self._edge_pos = (g.row, g.col, upper, lower)
        return upper, lower

    # ---- state --------------------------------------------------------------
    @property
    def state(self) -> np.ndarray:
        """States, shape (n_chains, n_nodes): int8 +/-1 (Ising) or uint8 in
        [0, K) (Potts); a numpy copy."""
        with self._lock:
            s = self._s.get() if self.device == "cuda" else self._s
            if not self._potts:
                s = _unpack_spins(s, self.n_chains)
            return np.array(s.T, order="C")  # a copy, also when s.T is already contiguous

    def _check_state(self, value: Any, shape: tuple, name: str) -> np.ndarray:
        if _backend.is_cupy(value):
            value = value.get()
        s = np.asarray(value)
        if s.dtype.kind not in "iub":
            raise TypeError(f"'{name}': expected an integer array, got dtype {s.dtype}")
        if s.dtype.kind == "b" and self._potts:
            raise TypeError(f"'{name}': expected integer Potts states in [0, {self.K}), got dtype bool")
        if s.shape != shape:
            raise ValueError(f"'{name}': expected shape {shape}, got {s.shape}")
        if self._potts:
            if s.size and (s.min() < 0 or s.max() >= self.K):
                raise ValueError(f"'{name}': Potts states must lie in [0, {self.K})")
            return s.astype(np.uint8)
        if s.dtype.kind == "b":
            return np.where(s, 1, -1).astype(np.int8)
        if not np.all((s == 1) | (s == -1)):
            raise ValueError(f"'{name}': spin states must be +1 or -1")
        return s.astype(np.int8)

    @state.setter
    def state(self, value: Any) -> None:
        s = self._check_state(value, (self.n_chains, self.n_nodes), "state")
        s = np.ascontiguousarray(s.T)
        s = self._state_to_device(s if self._potts else _pack_spins(s))
        with self._lock:
            self._s = s

    @locked
    def clamp(self, nodes: Any, values: Any) -> None:
        """Hold ``nodes`` fixed at ``values`` (shape (len(nodes),) for all
        chains alike, or (n_chains, len(nodes))). Clamped nodes are skipped by
        the sweeps; a later clamp adds to the set."""
        idx = _index_array(nodes, "nodes", self.n_nodes).reshape(-1)
        v = np.asarray(values)
        if v.ndim == 1:
            v = np.broadcast_to(v, (self.n_chains, idx.size))
        v = self._check_state(v, (self.n_chains, idx.size), "values")
        s = self.state
        s[:, idx] = v
        self.state = s
        self.clamped[idx] = True
        self._reschedule()

    @locked
    def unclamp(self, nodes: Any = None) -> None:
        """Release the given clamped nodes (all when None)."""
        if nodes is None:
            self.clamped[:] = False
        else:
            self.clamped[_index_array(nodes, "nodes", self.n_nodes)] = False
        self._reschedule()

    # ---- kernels ------------------------------------------------------------
    def _args(self):
        k = self._k
        if self.device == "cuda":
            p = _backend.device_pointer
            return (p(k["row"]), p(k["col"]), p(k["w"]), p(k["bias"]), p(self._beta_dev), p(k["order"]))
        return (k["row"], k["col"], k["w"], k["bias"], self._beta_dev, k["order"])

    @locked
    def sweep(self, n: int = 1) -> "_SparseModel":
        """Run ``n`` sweeps (every free node updated once per sweep).

        On the CPU the sweeps run in slices between which Ctrl-C raises
        KeyboardInterrupt; the state then holds the sweeps done, and
        ``sweeps_done`` counts them (a later sweep continues the same run)."""
        n = _as_int(n, "n", 0)
        if n == 0:
            return self
        row, col, w, bias, beta, order = self._args()
        bp = self._k["block_ptr"]
        if self.device == "cuda":
            cu = _backend.cuda_module()
            with _backend.on_device(self._s):
                cu.sparse_sweeps(
                    _backend.device_pointer(self._s),
                    self.n_chains,
                    self.K if self._potts else 0,
                    self.n_nodes,
                    row,
                    col,
                    w,
                    bias,
                    beta,
                    order,
                    bp,
                    self.seed,
                    self._sweep,
                    n,
                    _backend.current_stream(),
                    self.chain_offset,
                    self._beta_uniform,
                )
        else:
            done = np.zeros(1, dtype=np.int64)
            tail = (row, col, w, bias, beta, order, bp, self.seed, self._sweep, n, self.chain_offset, done)
            try:
                if self._potts:
                    _core.sparse_potts_sweeps(self._s.reshape(-1), self.n_chains, self.K, *tail)
                else:
                    _core.sparse_ising_sweeps(self._s.reshape(-1), self.n_chains, *tail)
            finally:
                self._sweep += int(done[0])
            return self
        self._sweep += n
        return self

    @property
    def sweeps_done(self) -> int:
        return self._sweep

    def _observe(self, nodes: np.ndarray, pairs: np.ndarray, m1, m2):
        """energy [C], mag [C] (Ising); adds node/pair sums to m1, m2."""
        row, col, w, bias, _, _ = self._args()
        C = self.n_chains
        if self.device == "cuda":
            cp = _backend.cupy_module()
            cu = _backend.cuda_module()
            p = _backend.device_pointer
            energy = cp.zeros(C, dtype=cp.float64)
            mag = cp.zeros(C, dtype=cp.float64)
            with _backend.on_device(self._s):
                cu.sparse_observe(
                    p(self._s),
                    C,
                    self.K if self._potts else 0,
                    self.n_nodes,
                    row,
                    col,
                    w,
                    bias,
                    p(energy),
                    p(mag),
                    p(nodes),
                    int(nodes.size),
                    p(m1),
                    p(pairs),
                    int(pairs.size // 2),
                    p(m2),
                    _backend.current_stream(),
                )
            return energy, mag
        energy = np.zeros(C)
        mag = np.zeros(C)
        if self._potts:
            _core.sparse_potts_observe(
                self._s.reshape(-1),
                C,
                self.K,
                row,
                col,
                w,
                bias,
                energy,
                nodes,
                m1.reshape(-1),
                pairs.reshape(-1),
                m2,
            )
        else:
            _core.sparse_ising_observe(
                self._s.reshape(-1), C, row, col, w, bias, energy, mag, nodes, m1, pairs.reshape(-1), m2
            )
        return energy, mag

    @locked
    def energy(self) -> np.ndarray:
        """Energy of each chain's current state, shape (n_chains,), float64."""
        xp = _backend.cupy_module() if self.device == "cuda" else np
        e, _ = self._observe(
            xp.zeros(0, dtype=np.int32), xp.zeros(0, dtype=np.int32), xp.zeros(0), xp.zeros(0)
        )
        return e.get() if self.device == "cuda" else e

    @locked
    def sample(
        self,
        n_samples: int,
        warmup: int = 0,
        thin: int = 1,
        nodes: Any = None,
        pairs: Any = None,
        keep_states: bool = False,
    ) -> SparseSamples:
        """Warm up, then record ``n_samples`` states ``thin`` sweeps apart.

        The energy (and magnetization) of every chain, and the sums over
        chains and records of the chosen nodes' states and pair products, are
        accumulated by kernels on the device holding the states: nothing is
        copied back per sweep unless ``keep_states``.

        Parameters
        ----------
        nodes : array_like of int, optional
            Nodes whose first moments to estimate ("all" for every node).
        pairs : array_like of shape (n_pairs, 2), optional
            Node pairs whose second moments to estimate ("edges" for every edge).
        """
        n_samples = _as_int(n_samples, "n_samples", 1)
        thin = _as_int(thin, "thin", 1)
        per_record = self.n_chains * (2 + (self.n_nodes if keep_states else 0))
        check_values(n_samples * per_record, "n_samples", f"{n_samples} records of {self.n_chains} chains")
        self.sweep(_as_int(warmup, "warmup", 0))
        xp = _backend.cupy_module() if self.device == "cuda" else np
        nd = self._node_list(nodes)
        pr = self._pair_list(pairs)
        m1 = xp.zeros((nd.size, self.K) if self._potts else nd.size)
        m2 = xp.zeros(pr.shape[0])
        nd_d, pr_d = xp.asarray(nd), xp.asarray(np.ascontiguousarray(pr.reshape(-1)))
        E = []
        M = []
        states = []
        t0 = time.perf_counter()
        for _ in range(n_samples):
            self.sweep(thin)
            e, m = self._observe(nd_d, pr_d, m1, m2)
            E.append(e)
            M.append(m)
            if keep_states:
                states.append(self.state)
        if self.device == "cuda":
            E = [e.get() for e in E]
            M = [m.get() for m in M]
            m1, m2 = m1.get(), m2.get()
        dt = time.perf_counter() - t0
        denom = float(n_samples * self.n_chains)
        return SparseSamples(
            energy=np.array(E),
            magnetization=None if self._potts else np.array(M),
            node_mean=m1 / denom if nd.size else None,
            pair_mean=m2 / denom if pr.shape[0] else None,
            states=np.array(states) if keep_states else None,
            sweeps=n_samples * thin,
            seconds=dt,
        )

    def _node_list(self, nodes: Any) -> np.ndarray:
        if nodes is None:
            return np.zeros(0, dtype=np.int32)
        if isinstance(nodes, str) and nodes == "all":
            return np.arange(self.n_nodes, dtype=np.int32)
        return _index_array(nodes, "nodes", self.n_nodes).reshape(-1).astype(np.int32)

    def _pair_list(self, pairs: Any) -> np.ndarray:
        if pairs is None:
            return np.zeros((0, 2), dtype=np.int32)
        if isinstance(pairs, str) and pairs == "edges":
            i, j, _ = self.graph.edges()
            return np.stack([i, j], axis=1).astype(np.int32)
        p = np.asarray(pairs)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"'pairs': expected shape (n_pairs, 2), got {p.shape}")
        return _index_array(p, "pairs", self.n_nodes).astype(np.int32)

    # ---- exact answers for small graphs ------------------------------------
    def enumerate_log_probs(self, beta: Optional[float] = None) -> tuple[np.ndarray, np.ndarray, float]:
        """Exact distribution of the free nodes given the clamped ones (chain
        0's clamped values) by enumeration, for small graphs (<= 20 free
        nodes).

        Returns
        -------
        states : ndarray (n_states, n_nodes), log_p : ndarray (n_states,), log_z : float
        """
        free = np.flatnonzero(~self.clamped)
        if free.size > 20:
            raise ValueError(f"enumeration needs <= 20 free nodes, got {free.size}")
        beta = float(self._beta[0]) if beta is None else float(beta)
        if not np.isfinite(beta):
            raise ValueError(f"'beta': must be finite, got {beta}")
        q = self.K
        grid = np.indices((q,) * free.size).reshape(free.size, -1).T
        base = self.state[0]
        states = np.repeat(base[None, :], grid.shape[0], axis=0).astype(np.int64)
        states[:, free] = grid if self._potts else 2 * grid - 1
        e = self.energy_of(states)
        lw = -beta * e
        m = lw.max()
        log_z = float(m + np.log(np.exp(lw - m).sum()))
        return states, lw - log_z, log_z

    def energy_of(self, states: Any) -> np.ndarray:
        """Energies of given states (n, n_nodes) in float64 (numpy)."""
        s = np.asarray(states)
        if s.ndim != 2 or s.shape[1] != self.n_nodes:
            raise ValueError(f"'states': expected shape (n, {self.n_nodes}), got {s.shape}")
        if s.dtype.kind not in "iubf":
            raise TypeError(f"'states': expected numeric states, got dtype {s.dtype}")
        if self._potts and not np.all((s >= 0) & (s < self.K) & (s == np.round(s))):
            raise ValueError(f"'states': Potts states must be integers in [0, {self.K})")
        if self._potts:
            s = s.astype(np.int64)
        if not self._potts and not np.all((s == 1) | (s == -1)):
            raise ValueError("'states': spin states must be +1 or -1")
        i, j, w = self.graph.edges()
        w = w.astype(np.float64)
        b = self._bias.astype(np.float64)
        if self._potts:
            pair = (s[:, i] == s[:, j]) @ w
            single = b[np.arange(self.n_nodes)[None, :], s].sum(axis=1)
        else:
            s = s.astype(np.float64)
            pair = (s[:, i] * s[:, j]) @ w
            single = s @ b
        return -(pair + single)


class SparseIsing(_SparseModel):
    """Sparse Boltzmann machine of +/-1 spins with real couplings and biases.

    Parameters
    ----------
    couplings : array_like (n, n) or scipy.sparse matrix
        Symmetric, zero diagonal. (Or use :meth:`from_networkx`,
        :meth:`from_edges`.)
    bias : array_like of shape (n,), optional
    beta : float or array_like of shape (n_chains,)
    n_chains : int, optional
    colouring : "dsatur", "greedy", int array (n,) or sequence of blocks
        Given colourings are checked to be proper.
    seed : int, numpy.random.Generator or None
    storage : {"csr", "ell"}
        Neighbour lists as CSR or padded to the maximum degree (ELL).
    device : {"cpu", "cuda"}
    chain_offset : int
        Global index of this object's first chain (a multiple of 256): chain
        c here is chain ``chain_offset + c`` of the run for its initial state
        and every random number, so shards of a run reproduce it exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from heatbath.ebm import SparseIsing
    >>> J = np.array([[0, 1.0], [1.0, 0]])
    >>> m = SparseIsing(J, beta=0.5, n_chains=1000, seed=0)
    >>> r = m.sample(200, warmup=10, pairs=[[0, 1]])
    >>> abs(r.pair_mean[0] - np.tanh(0.5)) < 0.02
    True
    """

    _potts = False

    def __init__(
        self,
        couplings: Any,
        bias: Any = None,
        beta: Any = 1.0,
        n_chains: Optional[int] = None,
        colouring: Any = "dsatur",
        seed: Any = None,
        storage: str = "csr",
        device: str = "cpu",
        chain_offset: int = 0,
    ) -> None:
        graph = couplings if isinstance(couplings, CSRGraph) else couplings_to_graph(couplings, "couplings")
        super().__init__(graph, bias, beta, n_chains, colouring, seed, storage, device, 2, chain_offset)

    @classmethod
    def from_edges(
        cls, nodes: Union[int, Sequence[Any]], edges: Sequence[Any], weights: Any, bias: Any = None, **kw: Any
    ) -> "SparseIsing":
        """THRML-like construction: ``nodes`` (a count or a list of hashable
        node objects), ``edges`` (pairs of nodes), ``weights`` (one per edge)."""
        g, _ = _edges_graph(nodes, edges, weights)
        return cls(g, bias, **kw)

    @classmethod
    def from_networkx(cls, G: Any, weight: str = "weight", bias: str = "bias", **kw: Any) -> "SparseIsing":
        """From an undirected networkx graph: edge attribute ``weight`` (default
        1), node attribute ``bias`` (default 0)."""
        g, nodes = graph_from_networkx(G, weight)
        b = np.array([float(G.nodes[v].get(bias, 0.0)) for v in nodes])
        return cls(g, b, **kw)

    def moments(self, n_samples: int = 200, warmup: int = 20, thin: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """<s_i> for every node and <s_i s_j> for every edge (order of
        ``graph.edges()``), averaged over chains and samples. With clamped
        nodes these are the clamped (positive-phase) moments, else the free
        (negative-phase) ones."""
        r = self.sample(n_samples, warmup, thin, nodes="all", pairs="edges")
        pm = r.pair_mean if r.pair_mean is not None else np.zeros(0)
        return r.node_mean, pm

    @locked
    def fit(
        self,
        data: Any,
        visible: Any = None,
        n_iter: int = 100,
        lr: float = 0.05,
        n_samples: int = 20,
        sweeps: int = 2,
        l2: float = 0.0,
        verbose: bool = False,
    ) -> "SparseIsing":
        """Fit couplings (on the existing edges) and biases to binary data by
        the contrastive gradient of the log likelihood:
        ``dJ_ij ~ <s_i s_j>_clamped - <s_i s_j>_free``, ``db_i ~ <s_i>_clamped - <s_i>_free``.

        Parameters
        ----------
        data : array_like of shape (n_data, n_visible)
            Binary data, {0, 1} or {-1, +1} (or bool).
        visible : array_like of int, optional
            The visible nodes (default: all nodes, a fully visible machine,
            whose clamped moments are the data moments).
        n_iter : int
            Gradient steps.
        lr : float
            Learning rate.
        n_samples, sweeps : int
            Free phase: persistent chains (this model's), ``n_samples``
            records ``sweeps`` sweeps apart per step.
        """
        X = np.asarray(data)
        if X.dtype.kind not in "biuf" or X.ndim != 2:
            raise TypeError(
                f"'data': expected a 2-D array of binary values, got dtype {X.dtype}, shape {X.shape}"
            )
        if X.shape[0] == 0:
            raise ValueError("'data': no rows")
        n_iter = _as_int(n_iter, "n_iter", 1)
        n_samples = _as_int(n_samples, "n_samples", 1)
        sweeps = _as_int(sweeps, "sweeps", 1)
        for name, v in (("lr", lr), ("l2", l2)):
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"'{name}': expected a number, got {type(v).__name__}") from None
            if not (np.isfinite(fv) and fv >= 0):
                raise ValueError(f"'{name}': must be a finite number >= 0, got {v!r}")
        vis = (
            np.arange(self.n_nodes)
            if visible is None
            else _index_array(visible, "visible", self.n_nodes).reshape(-1)
        )
        if np.unique(vis).size != vis.size:
            raise ValueError("'visible': repeats a node")
        if X.shape[1] != vis.size:
            raise ValueError(f"'data': expected {vis.size} columns (visible nodes), got {X.shape[1]}")
        vals = np.unique(X)
        if np.all(np.isin(vals, [0, 1])):
            S = 2 * X.astype(np.int8) - 1
        elif np.all(np.isin(vals, [-1, 1])):
            S = X.astype(np.int8)
        else:
            raise ValueError("'data': values must be binary, {0, 1} or {-1, +1}")
        i, j, w = self.graph.edges()
        w = w.astype(np.float64)
        b = self._bias.astype(np.float64)
        hidden = np.setdiff1d(np.arange(self.n_nodes), vis)
        if hidden.size == 0:
            pos1 = np.zeros(self.n_nodes)
            pos1[vis] = S.mean(axis=0)
            full = np.zeros((S.shape[0], self.n_nodes), dtype=np.float64)
            full[:, vis] = S
            pos2 = (full[:, i] * full[:, j]).mean(axis=0)
        else:
            clamped = SparseIsing(
                self.graph,
                b,
                beta=self.beta[0],
                n_chains=S.shape[0],
                colouring=self.colours,
                seed=self.seed + 1,
            )
        for it in range(n_iter):
            if hidden.size:
                clamped.set_parameters(w, b)
                clamped.unclamp()
                clamped.clamp(vis, S)
                pos1, pos2 = clamped.moments(n_samples, warmup=sweeps * 2, thin=sweeps)
            self.set_parameters(w, b)
            neg1, neg2 = self.moments(n_samples, warmup=0, thin=sweeps)
            w += lr * (pos2 - neg2) - lr * l2 * w
            b += lr * (pos1 - neg1)
            if not (np.all(np.abs(w) <= _F32_MAX) and np.all(np.abs(b) <= _F32_MAX)):
                raise FloatingPointError(
                    f"fit step {it}: the parameters diverged (not finite in float32); lower 'lr' (got {lr})"
                )
            if verbose:
                print(f"fit step {it}: |grad J| = {np.abs(pos2 - neg2).max():.4f}")
        self.set_parameters(w, b)
        return self


class SparsePotts(_SparseModel):
    """Sparse Potts model: K-state nodes, ``E = -sum_{i<j} J_ij [s_i == s_j] -
    sum_i b_i[s_i]``. Parameters as :class:`SparseIsing`, with ``K`` states
    (2 .. 64) and ``bias`` of shape (n, K)."""

    _potts = True

    def __init__(
        self,
        couplings: Any,
        K: int,
        bias: Any = None,
        beta: Any = 1.0,
        n_chains: Optional[int] = None,
        colouring: Any = "dsatur",
        seed: Any = None,
        storage: str = "csr",
        device: str = "cpu",
        chain_offset: int = 0,
    ) -> None:
        K = _as_int(K, "K", 2)
        if K > 64:
            raise ValueError(f"'K': at most 64 states, got {K}")
        graph = couplings if isinstance(couplings, CSRGraph) else couplings_to_graph(couplings, "couplings")
        super().__init__(graph, bias, beta, n_chains, colouring, seed, storage, device, K, chain_offset)

    @classmethod
    def from_edges(
        cls,
        nodes: Union[int, Sequence[Any]],
        edges: Sequence[Any],
        weights: Any,
        K: int,
        bias: Any = None,
        **kw: Any,
    ) -> "SparsePotts":
        g, _ = _edges_graph(nodes, edges, weights)
        return cls(g, K, bias, **kw)

    @classmethod
    def from_networkx(cls, G: Any, K: int, weight: str = "weight", **kw: Any) -> "SparsePotts":
        g, _ = graph_from_networkx(G, weight)
        return cls(g, K, **kw)
