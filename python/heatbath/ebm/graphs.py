"""Sparse graphs for the Gibbs samplers: symmetric CSR/ELL couplings from
dense arrays, scipy.sparse matrices, networkx graphs or THRML-like
(nodes, edges, weights) lists; graph colourings (greedy, DSATUR) and their
check; the graph of Extropic's denoising thermodynamic models (DTMs)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

__all__ = [
    "CSRGraph",
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
    if not np.all(np.isfinite(w)):
        raise ValueError(f"'{name}': weights must be finite")
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


def check_colouring(g: CSRGraph, colours: Any, name: str = "colouring") -> np.ndarray:
    """Validate a colouring (one int per node, adjacent nodes differ); returns
    it as int32 or raises ValueError naming ``name`` and an offending edge."""
    c = np.asarray(colours)
    if c.dtype.kind not in "iu":
        raise TypeError(f"'{name}': expected integer colours, got dtype {c.dtype}")
    if c.shape != (g.n,):
        raise ValueError(f"'{name}': expected one colour per node, shape ({g.n},), got {c.shape}")
    if c.size and c.min() < 0:
        raise ValueError(f"'{name}': colours must be >= 0")
    i = np.repeat(np.arange(g.n), g.degrees)
    bad = np.flatnonzero(c[i] == c[g.col])
    if bad.size:
        a, b = int(i[bad[0]]), int(g.col[bad[0]])
        raise ValueError(
            f"'{name}': not a proper colouring: adjacent nodes {a} and {b} both have colour {int(c[a])}"
        )
    return c.astype(np.int32)


def blocks_from_colouring(
    colours: np.ndarray, skip: Optional[np.ndarray] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Update schedule (order int32, block_ptr int64) of a colouring: the nodes
    of colour 0, then colour 1, ...; nodes with ``skip`` true are left out."""
    colours = np.asarray(colours)
    ncol = int(colours.max()) + 1 if colours.size else 0
    keep = np.ones(colours.size, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)
    order, ptr = [], [0]
    for c in range(ncol):
        nodes = np.flatnonzero((colours == c) & keep)
        order.append(nodes)
        ptr.append(ptr[-1] + nodes.size)
    o = np.concatenate(order).astype(np.int32) if order else np.zeros(0, dtype=np.int32)
    return o, np.asarray(ptr, dtype=np.int64)


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
    if side % 2:
        raise ValueError(f"'side': must be even for the parity colouring, got {side}")
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
        w = np.asarray(list(weights), dtype=np.float64)
    colours = ((ii + jj) % 2).ravel().astype(np.int32)
    return i.astype(np.int32), j.astype(np.int32), w.astype(np.float32), colours
