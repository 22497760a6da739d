"""Sparse graphs for the Gibbs samplers: symmetric CSR/ELL couplings from
dense arrays, scipy.sparse matrices, networkx graphs or THRML-like
(nodes, edges, weights) lists; graph colourings (greedy, DSATUR) and their
check; the graph of Extropic's denoising thermodynamic models (DTMs)."""

from __future__ import annotations

import heapq
import operator
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

__all__ = [
    "CSRGraph",
    "check_graph",
    "compress_colours",
    "couplings_to_graph",
    "graph_from_edges",
    "graph_from_networkx",
    "greedy_colouring",
    "dsatur_colouring",
    "check_colouring",
    "blocks_from_colouring",
    "dtm_grid_edges",
]


@dataclass
class CSRGraph:
    """A symmetric weighted graph in CSR form (both directions stored).

    Attributes
    ----------
    row : ndarray of shape (n + 1,), int64
    col : ndarray of shape (nnz,), int32
    weights : ndarray of shape (nnz,), float32
    n : int
    """

    row: np.ndarray
    col: np.ndarray
    weights: np.ndarray
    n: int

    @property
    def degrees(self) -> np.ndarray:
        return np.diff(self.row)

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Undirected edges (i < j): arrays i, j (int32) and weights (float32)."""
        i = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(self.row))
        keep = i < self.col
        return i[keep], self.col[keep], self.weights[keep]

    def to_ell(self) -> "CSRGraph":
        """The same graph padded to a fixed number of neighbours per node
        (ELL; padding: neighbour 0 with weight 0), still addressed by ``row``."""
        d = int(self.degrees.max()) if self.n else 0
        col = np.zeros((self.n, d), dtype=np.int32)
        w = np.zeros((self.n, d), dtype=np.float32)
        deg = self.degrees
        pos = np.arange(self.col.size) - np.repeat(self.row[:-1], deg)
        rows = np.repeat(np.arange(self.n), deg)
        col[rows, pos] = self.col
        w[rows, pos] = self.weights
        return CSRGraph(np.arange(self.n + 1, dtype=np.int64) * d, col.reshape(-1), w.reshape(-1), self.n)

    def dense(self) -> np.ndarray:
        """Dense (n, n) float64 coupling matrix."""
        out = np.zeros((self.n, self.n))
        i = np.repeat(np.arange(self.n), np.diff(self.row))
        np.add.at(out, (i, self.col), self.weights.astype(np.float64))
        return out


_F32_MAX = float(np.finfo(np.float32).max)


def finite_f32(a: Any, name: str) -> np.ndarray:
    """``a`` as float32, or ValueError naming ``name`` when a value is NaN,
    infinite or too large for float32 (it would become infinite there)."""
    x = np.asarray(a)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"'{name}': must be finite (got NaN or infinity)")
    if x.size and np.abs(x).max() > _F32_MAX:
        raise ValueError(f"'{name}': values must fit float32 (|x| <= {_F32_MAX:.4g}), got {np.abs(x).max():.4g}")
    return x.astype(np.float32)


def _index_array(a: Any, name: str, n: int) -> np.ndarray:
    """Integer indices in [0, n) as int64; TypeError for non-integers."""
    x = np.asarray(a)
    if x.dtype.kind not in "iu":
        if x.size == 0:
            return np.zeros(x.shape, dtype=np.int64)
        raise TypeError(f"'{name}': expected integer node indices, got dtype {x.dtype}")
    if x.size and (int(x.min()) < 0 or int(x.max()) >= n):
        bad = int(x.min()) if int(x.min()) < 0 else int(x.max())
        raise ValueError(f"'{name}': node indices must lie in [0, {n}), got {bad}")
    return x.astype(np.int64)


def check_graph(g: Any, name: str = "couplings") -> CSRGraph:
    """Validate a user-built :class:`CSRGraph` and return it with the dtypes
    the kernels read: ``row`` int64 of n + 1 offsets from 0, non-decreasing,
    ending at ``len(col)``; ``col`` neighbour indices in [0, n), no self-loop
    and no repeated neighbour in a row; ``weights`` finite float32 values;
    the graph symmetric (entry (i, j) and (j, i) both stored, equal weights).
    Errors name ``name`` and say what is wrong."""
    if not isinstance(g, CSRGraph):
        raise TypeError(f"'{name}': expected a CSRGraph, got {type(g).__name__}")
    try:
        n = int(operator.index(g.n))
    except TypeError:
        raise TypeError(f"'{name}': n must be an int, got {type(g.n).__name__}") from None
    if not 0 <= n < 2**31:
        raise ValueError(f"'{name}': n must lie in [0, 2**31), got {n}")
    row = np.asarray(g.row)
    if row.dtype.kind not in "iu" or row.shape != (n + 1,):
        raise ValueError(f"'{name}': row must be n + 1 = {n + 1} integer offsets, got dtype {row.dtype}, "
                         f"shape {row.shape}")
    col = np.asarray(g.col).reshape(-1) if np.ndim(g.col) == 1 else np.asarray(g.col)
    if col.ndim != 1 or col.dtype.kind not in "iu":
        raise ValueError(f"'{name}': col must be a 1-D integer array, got dtype {col.dtype}, shape {col.shape}")
    nnz = col.size
    if int(row[0]) != 0 or int(row[-1]) != nnz or (n and np.any(np.diff(row.astype(np.int64)) < 0)):
        raise ValueError(f"'{name}': row must start at 0, never decrease and end at len(col) = {nnz}")
    if nnz and (int(col.min()) < 0 or int(col.max()) >= n):
        bad = int(col.min()) if int(col.min()) < 0 else int(col.max())
        raise ValueError(f"'{name}': col holds node index {bad}, outside [0, {n})")
    w = np.asarray(g.weights)
    if w.shape != (nnz,):
        raise ValueError(f"'{name}': weights must have one value per col entry ({nnz}), got shape {w.shape}")
    w = finite_f32(w, name)
    col64 = col.astype(np.int64)
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(row.astype(np.int64)))
    if np.any(src == col64):
        raise ValueError(f"'{name}': self-loop at node {int(src[src == col64][0])} (put single-node terms in the biases)")
    key = src * n + col64
    order = np.argsort(key, kind="stable")
    ks = key[order]
    if nnz > 1 and np.any(ks[1:] == ks[:-1]):
        k = int(ks[1:][ks[1:] == ks[:-1]][0])
        raise ValueError(f"'{name}': duplicate entry ({k // n}, {k % n})")
    keyt = col64 * n + src
    ordert = np.argsort(keyt, kind="stable")
    if not (np.array_equal(ks, keyt[ordert]) and np.array_equal(w[order], w[ordert])):
        raise ValueError(f"'{name}': the graph must be symmetric (entry (i, j) and (j, i) with equal weights)")
    return CSRGraph(np.ascontiguousarray(row, dtype=np.int64), np.ascontiguousarray(col, dtype=np.int32),
                    np.ascontiguousarray(w), n)


def graph_from_edges(n: int, i: Any, j: Any, w: Any, name: str = "edges") -> CSRGraph:
    """Symmetric CSR graph from undirected edges (i, j, w): each edge is stored
    in both directions; duplicate edges are an error, as are self-loops."""
    i = np.asarray(i, dtype=np.int64).reshape(-1)
    j = np.asarray(j, dtype=np.int64).reshape(-1)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if not (i.size == j.size == w.size):
        raise ValueError(
            f"'{name}': edge endpoints and weights differ in length ({i.size}, {j.size}, {w.size})"
        )
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"'{name}': node index out of range [0, {n})")
    if np.any(i == j):
        k = int(np.flatnonzero(i == j)[0])
        raise ValueError(f"'{name}': self-loop at node {int(i[k])} (put single-node terms in the biases)")
    w = finite_f32(w, name).astype(np.float64)
    a, b = np.minimum(i, j), np.maximum(i, j)
    key = a * n + b
    if np.unique(key).size != key.size:
        raise ValueError(f"'{name}': duplicate edges")
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    ww = np.concatenate([w, w])
    order = np.lexsort((dst, src))
    src, dst, ww = src[order], dst[order], ww[order]
    row = np.zeros(n + 1, dtype=np.int64)
    np.add.at(row, src + 1, 1)
    row = np.cumsum(row)
    return CSRGraph(row, dst.astype(np.int32), ww.astype(np.float32), int(n))


def couplings_to_graph(J: Any, name: str = "couplings") -> CSRGraph:
    """Symmetric CSR graph from a square coupling matrix (dense array_like or
    scipy.sparse). The matrix must be square, symmetric and zero on the
    diagonal."""
    if hasattr(J, "tocoo") and hasattr(J, "shape"):  # scipy.sparse
        shape = tuple(J.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"'{name}': expected a square matrix, got shape {shape}")
        coo = J.tocoo()
        i, j, w = np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data, dtype=np.float64)
        n = shape[0]
        keep = w != 0
        i, j, w = i[keep], j[keep], w[keep]
        key = i.astype(np.int64) * n + j
        order = np.argsort(key)
        keyt = j.astype(np.int64) * n + i
        ordert = np.argsort(keyt)
        if not (np.array_equal(key[order], keyt[ordert]) and np.array_equal(w[order], w[ordert])):
            raise ValueError(f"'{name}': the coupling matrix must be symmetric (J[i, j] == J[j, i])")
    else:
        A = np.asarray(J)
        if A.dtype.kind not in "biuf":
            raise TypeError(f"'{name}': expected a real matrix, got dtype {A.dtype}")
        A = A.astype(np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"'{name}': expected a square matrix, got shape {A.shape}")
        if not np.array_equal(A, A.T):
            bad = np.argwhere(A != A.T)[0]
            raise ValueError(
                f"'{name}': the coupling matrix must be symmetric; "
                f"J[{bad[0]}, {bad[1]}] = {A[bad[0], bad[1]]} but J[{bad[1]}, {bad[0]}] = "
                f"{A[bad[1], bad[0]]}"
            )
        n = A.shape[0]
        i, j = np.nonzero(A)
        w = A[i, j]
    if np.any(i == j):
        raise ValueError(f"'{name}': the diagonal must be zero (put single-node terms in the biases)")
    up = i < j
    return graph_from_edges(n, i[up], j[up], w[up], name)


def graph_from_networkx(G: Any, weight: str = "weight", default: float = 1.0) -> tuple[CSRGraph, list]:
    """CSR graph of an undirected networkx graph; returns (graph, node list),
    the nodes numbered in ``list(G.nodes)`` order. Edge attribute ``weight``
    (``default`` when missing)."""
    if G.is_directed():
        raise ValueError("'G': expected an undirected graph (couplings are symmetric)")
    nodes = list(G.nodes)
    index = {v: k for k, v in enumerate(nodes)}
    i, j, w = [], [], []
    for a, b, d in G.edges(data=True):
        i.append(index[a])
        j.append(index[b])
        w.append(float(d.get(weight, default)))
    return graph_from_edges(len(nodes), i, j, w, "G"), nodes


def _adjacency(g: CSRGraph) -> list[np.ndarray]:
    return [g.col[g.row[v] : g.row[v + 1]] for v in range(g.n)]


def greedy_colouring(g: CSRGraph) -> np.ndarray:
    """Greedy colouring in largest-degree-first order: int32 colour per node."""
    adj = _adjacency(g)
    colour = np.full(g.n, -1, dtype=np.int32)
    for v in np.argsort(-g.degrees, kind="stable"):
        used = set(colour[adj[v]].tolist())
        c = 0
        while c in used:
            c += 1
        colour[v] = c
    return colour


def dsatur_colouring(g: CSRGraph) -> np.ndarray:
    """DSATUR (Brelaz): colour next the node with the most distinct colours
    among its neighbours (ties: larger degree, then lower index)."""
    adj = _adjacency(g)
    n = g.n
    colour = np.full(n, -1, dtype=np.int32)
    seen: list[set] = [set() for _ in range(n)]
    deg = g.degrees
    heap = [(0, -int(deg[v]), v) for v in range(n)]
    heapq.heapify(heap)
    while heap:
        sat, _, v = heapq.heappop(heap)
        if colour[v] >= 0 or -sat != len(seen[v]):
            continue
        c = 0
        while c in seen[v]:
            c += 1
        colour[v] = c
        for u in adj[v]:
            if colour[u] < 0 and c not in seen[u]:
                seen[u].add(c)
                heapq.heappush(heap, (-len(seen[u]), -int(deg[u]), int(u)))
    return colour


def compress_colours(colours: Any, name: str = "colouring") -> np.ndarray:
    """Integer colours (any values >= 0) as int32 labels 0 .. k-1 in the order
    of the colours' values: the same blocks, numbered without gaps, so no
    colour number is looped over or narrowed to int32."""
    c = np.asarray(colours)
    if c.dtype.kind not in "iu":
        raise TypeError(f"'{name}': expected integer colours, got dtype {c.dtype}")
    if c.ndim != 1:
        raise ValueError(f"'{name}': expected one colour per node (1-D), got shape {c.shape}")
    if c.size and c.dtype.kind == "i" and int(c.min()) < 0:
        raise ValueError(f"'{name}': colours must be >= 0, got {int(c.min())}")
    _, labels = np.unique(c, return_inverse=True)
    return labels.reshape(-1).astype(np.int32)


def check_colouring(g: CSRGraph, colours: Any, name: str = "colouring") -> np.ndarray:
    """Validate a colouring (one int per node, adjacent nodes differ); returns
    it compressed to int32 labels 0 .. k-1 (:func:`compress_colours`) or
    raises ValueError naming ``name`` and an offending edge."""
    c = np.asarray(colours)
    if c.dtype.kind not in "iu":
        raise TypeError(f"'{name}': expected integer colours, got dtype {c.dtype}")
    if c.shape != (g.n,):
        raise ValueError(f"'{name}': expected one colour per node, shape ({g.n},), got {c.shape}")
    c = compress_colours(c, name)
    i = np.repeat(np.arange(g.n), g.degrees)
    bad = np.flatnonzero(c[i] == c[g.col])
    if bad.size:
        a, b = int(i[bad[0]]), int(g.col[bad[0]])
        raise ValueError(
            f"'{name}': not a proper colouring: adjacent nodes {a} and {b} both have colour {int(c[a])}"
        )
    return c


def blocks_from_colouring(
    colours: np.ndarray, skip: Optional[np.ndarray] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Update schedule (order int32, block_ptr int64) of a colouring: the nodes
    of the smallest colour, then the next one, ... (colours that occur only;
    their values may have gaps); nodes with ``skip`` true are left out."""
    labels = compress_colours(colours, "colours")
    if skip is None:
        keep = np.ones(labels.size, dtype=bool)
    else:
        sk = np.asarray(skip)
        if sk.dtype != np.bool_ or sk.shape != labels.shape:
            raise TypeError(f"'skip': expected a boolean mask of shape {labels.shape}, got dtype {sk.dtype}, "
                            f"shape {sk.shape}")
        keep = ~sk
    ncol = int(labels.max()) + 1 if labels.size else 0
    nodes = np.flatnonzero(keep)
    lab = labels[nodes]
    o = nodes[np.argsort(lab, kind="stable")].astype(np.int32)
    ptr = np.zeros(ncol + 1, dtype=np.int64)
    np.cumsum(np.bincount(lab, minlength=ncol), out=ptr[1:])
    return o, ptr


def dtm_grid_edges(
    side: int = 70,
    offsets: Sequence[tuple[int, int]] = ((0, 1), (4, 1), (10, 9)),
    weights: Optional[Iterable[float]] = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The graph of Extropic's denoising thermodynamic models: a periodic
    ``side x side`` grid, node (i, j) = i * side + j coupled to (i + a, j + b)
    for each offset (a, b) and its rotations by 90 degrees (degree 4 per
    offset), with random normal couplings (scaled by 1/sqrt(degree)) unless
    given. Every offset has odd a + b, so the parity of i + j is a proper
    2-colouring.

    Returns
    -------
    i, j : ndarray of int32 (undirected edges), w : float32, colours : int32 (n,)
    """
    if isinstance(side, (bool, np.bool_)):
        raise TypeError("'side': expected an int, got bool")
    try:
        side = operator.index(side)
    except TypeError:
        raise TypeError(f"'side': expected an int, got {type(side).__name__}") from None
    if not 2 <= side <= 46340:
        raise ValueError(f"'side': must lie in [2, 46340] (side**2 nodes fit int32), got {side}")
    if side % 2:
        raise ValueError(f"'side': must be even for the parity colouring, got {side}")
    try:
        offsets = [(operator.index(a), operator.index(b)) for a, b in offsets]
    except (TypeError, ValueError):
        raise TypeError("'offsets': expected a sequence of (int, int) pairs") from None
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    src_l, dst_l = [], []
    for a, b in offsets:
        if (a + b) % 2 == 0:
            raise ValueError(f"'offsets': a + b must be odd for the parity colouring, got {(a, b)}")
        for da, db in ((a, b), (-b, a)):  # the other two rotations give the same undirected edges
            src_l.append((ii * side + jj).ravel())
            dst_l.append((((ii + da) % side) * side + (jj + db) % side).ravel())
    i = np.concatenate(src_l)
    j = np.concatenate(dst_l)
    a, b = np.minimum(i, j), np.maximum(i, j)
    key, idx = np.unique(a * side * side + b, return_index=True)
    i, j = a[idx], b[idx]
    deg = 4 * len(offsets)
    if weights is None:
        w = np.random.default_rng(seed).standard_normal(i.size) / np.sqrt(deg)
    else:
        w = finite_f32(np.asarray(list(weights)), "weights")
        if w.shape != i.shape:
            raise ValueError(f"'weights': expected one weight per edge ({i.size}), got shape {w.shape}")
    colours = ((ii + jj) % 2).ravel().astype(np.int32)
    return i.astype(np.int32), j.astype(np.int32), w.astype(np.float32), colours
