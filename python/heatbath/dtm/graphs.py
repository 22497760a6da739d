"""Graphs of denoising thermodynamic models: a set of nodes (spins), the
undirected edges that carry trainable couplings, a proper colouring for block
Gibbs sweeps, and which nodes hold the data bits (the visible nodes; the rest
are latent).

Builders: :func:`torus_graph` (the local degree-12 torus of Jelincic et al.,
offsets (0, 1), (4, 1), (10, 9) and their rotations, two colours by parity),
:func:`grid_graph` (the nearest-neighbour torus, degree 4) and
:func:`make_graph` (any edge list).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..ebm.graphs import check_colouring, dsatur_colouring, dtm_grid_edges, graph_from_edges
from ..ebm.sparse import _as_int

__all__ = ["DTMGraph", "grid_graph", "make_graph", "place_visible", "torus_graph"]


@dataclass(frozen=True)
class DTMGraph:
    """The node/edge structure shared by all steps of a DTM (or by an MEBM).

    Attributes
    ----------
    n_nodes : int
    edges_i, edges_j : ndarray of shape (n_edges,), int64
        Undirected edges, ``edges_i < edges_j``, sorted by (i, j).
    colours : ndarray of shape (n_nodes,), int32
        A proper colouring (adjacent nodes differ).
    visible : ndarray of shape (n_visible,), int64
        ``visible[k]`` is the node that holds data bit ``k``.
    shape : tuple (rows, cols) or None
        Grid shape of the nodes (node = row * cols + col), for plots.
    """

    n_nodes: int
    edges_i: np.ndarray
    edges_j: np.ndarray
    colours: np.ndarray
    visible: np.ndarray
    shape: Optional[tuple] = None

    @property
    def n_edges(self) -> int:
        return int(self.edges_i.size)

    @property
    def n_visible(self) -> int:
        return int(self.visible.size)

    @property
    def latent(self) -> np.ndarray:
        """The latent nodes (those that hold no data bit), int64."""
        mask = np.ones(self.n_nodes, dtype=bool)
        mask[self.visible] = False
        return np.flatnonzero(mask)

    @property
    def degrees(self) -> np.ndarray:
        return np.bincount(np.concatenate([self.edges_i, self.edges_j]), minlength=self.n_nodes)

    def config(self) -> dict:
        """JSON-able description (the arrays go to the checkpoint separately)."""
        return {"n_nodes": self.n_nodes, "shape": list(self.shape) if self.shape else None}


def _edge_ends(e: Any, n: int) -> np.ndarray:
    """One end of each edge: integers in [0, n) as int64 (no float truncated,
    no integer wrapped)."""
    try:
        a = np.asarray(e)
    except (TypeError, ValueError):
        raise TypeError("'edges': expected integer node indices") from None
    if a.dtype.kind not in "iu":
        raise TypeError(f"'edges': expected integer node indices, got dtype {a.dtype}")
    a = a.reshape(-1)
    if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
        raise ValueError(f"'edges': node index out of range [0, {n})")
    return a.astype(np.int64)


def make_graph(
    n_nodes: int,
    edges_i: Any,
    edges_j: Any,
    visible: Any,
    colours: Any = None,
    shape: Optional[Sequence[int]] = None,
) -> DTMGraph:
    """A :class:`DTMGraph` from an undirected edge list.

    Parameters
    ----------
    n_nodes : int
    edges_i, edges_j : array_like of int, shape (n_edges,)
        No self-loops, no duplicates (either orientation).
    visible : array_like of int, shape (n_visible,)
        Distinct nodes that hold the data bits, in data-column order.
    colours : array_like of int, shape (n_nodes,), optional
        A proper colouring; DSATUR when not given.
    shape : (rows, cols), optional
    """
    n = _as_int(n_nodes, "n_nodes", 1, 2**31 - 1)  # node indices are int32 in the kernels
    i, j = (_edge_ends(e, n) for e in (edges_i, edges_j))
    csr = graph_from_edges(n, i, j, np.ones(i.size), "edges")  # checks range, loops, duplicates
    a, b = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    vis = np.asarray(visible)
    if vis.dtype.kind not in "iu":
        raise TypeError(f"'visible': expected integer node indices, got dtype {vis.dtype}")
    vis = vis.astype(np.int64).reshape(-1)
    if vis.size == 0:
        raise ValueError("'visible': needs at least one visible node")
    if vis.min() < 0 or vis.max() >= n:
        raise ValueError(f"'visible': node indices must lie in [0, {n})")
    if np.unique(vis).size != vis.size:
        raise ValueError("'visible': repeats a node")
    if colours is None:
        col = dsatur_colouring(csr)
    else:
        col = check_colouring(csr, colours, "colours")
    shp = None if shape is None else tuple(int(s) for s in shape)
    if shp is not None and (len(shp) != 2 or shp[0] * shp[1] != n):
        raise ValueError(f"'shape': expected (rows, cols) with rows * cols == {n}, got {shape!r}")
    return DTMGraph(n, a, b, col.astype(np.int32), vis, shp)


def place_visible(
    side: int, n_visible: int, layout: str = "spread", image_shape: Optional[Sequence[int]] = None,
    seed: int = 0,
) -> np.ndarray:
    """Nodes of a ``side x side`` grid that hold the data bits.

    ``layout``: ``"spread"`` (image row r, column c at grid position
    ``floor((r + 1/2) side / h)``, ``floor((c + 1/2) side / w)``: the data bits
    evenly interleaved with latents), ``"block"`` (a centred h x w block) or
    ``"random"`` (distinct random nodes, numpy ``default_rng(seed)``).
    ``image_shape`` (h, w) defaults to the square ``sqrt(n_visible)`` when
    that is an integer, else to ``(ceil(n / w), w)`` with ``w = ceil(sqrt(n))``.
    """
    side = _as_int(side, "side", 1)
    n = _as_int(n_visible, "n_visible", 1)
    if n > side * side:
        raise ValueError(
            f"'n_visible': {n} data bits do not fit in a {side}x{side} grid ({side * side} nodes)"
        )
    if layout == "random":
        pick = np.random.default_rng(seed).choice(side * side, size=n, replace=False)
        return np.sort(pick).astype(np.int64)
    if image_shape is None:
        w = math.isqrt(n)
        if w * w != n:
            w = math.isqrt(n - 1) + 1
        h = -(-n // w)
    else:
        h, w = (int(s) for s in image_shape)
        if h * w < n:
            raise ValueError(f"'image_shape': {h}x{w} holds fewer than n_visible = {n} bits")
    if h > side or w > side:
        raise ValueError(
            f"'side': a {h}x{w} image does not fit in a {side}x{side} grid (no room for the data nodes)"
        )
    if layout == "spread":
        rows = np.floor((np.arange(h) + 0.5) * side / h).astype(np.int64)
        cols = np.floor((np.arange(w) + 0.5) * side / w).astype(np.int64)
    elif layout == "block":
        rows = (side - h) // 2 + np.arange(h)
        cols = (side - w) // 2 + np.arange(w)
    else:
        raise ValueError(f"'layout': expected 'spread', 'block' or 'random', got {layout!r}")
    return (rows[:, None] * side + cols[None, :]).reshape(-1)[:n].astype(np.int64)


def torus_graph(
    side: int = 12,
    n_visible: int = 64,
    offsets: Sequence[tuple] = ((0, 1), (4, 1), (10, 9)),
    layout: str = "spread",
    image_shape: Optional[Sequence[int]] = None,
    seed: int = 0,
) -> DTMGraph:
    """The DTM torus: a periodic ``side x side`` grid, node (r, c) coupled to
    (r + a, c + b) for each offset (a, b) and its rotations (degree 4 per
    offset; 12 for the default three), coloured by the parity of r + c.

    ``side`` must be even; offsets with even a + b are refused (they would break
    the parity colouring). Offsets that coincide modulo ``side`` give one edge.
    """
    side = _as_int(side, "side", 2)
    vis = place_visible(side, n_visible, layout, image_shape, seed)
    i, j, _, colours = dtm_grid_edges(side, offsets, weights=None, seed=0)
    i, j = i.astype(np.int64), j.astype(np.int64)
    keep = i != j
    return make_graph(side * side, i[keep], j[keep], vis, colours, (side, side))


def grid_graph(
    side: int = 12,
    n_visible: int = 64,
    layout: str = "spread",
    image_shape: Optional[Sequence[int]] = None,
    seed: int = 0,
) -> DTMGraph:
    """The plain nearest-neighbour torus (degree 4), parity-coloured."""
    return torus_graph(side, n_visible, ((0, 1),), layout, image_shape, seed)
