"""Pieces of the sparse-graph models that other modules share: the record
of a sampling run, integer argument checks, packed spin rows and graphs from
node and edge lists."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._guard import MAX_STEPS
from .graphs import CSRGraph, graph_from_edges

__all__ = ["SparseSamples"]


@dataclass
class SparseSamples:
    """What :meth:`SparseIsing.sample` / :meth:`SparsePotts.sample` recorded.

    Attributes
    ----------
    energy : ndarray of shape (n_records, n_chains), float64
    magnetization : ndarray of shape (n_records, n_chains), float64 or None
        Mean spin (Ising only).
    node_mean : ndarray of shape (n_nodes_observed,) (Ising: <s_i>) or
        (n_nodes_observed, K) (Potts: P(s_i = k)), float64, or None
    pair_mean : ndarray of shape (n_pairs,), float64, or None
        Ising: <s_i s_j>; Potts: P(s_i == s_j).
    states : ndarray of shape (n_records, n_chains, n_nodes) or None
        The recorded states, when asked for (``keep_states=True``).
    sweeps : int
    seconds : float
    """

    energy: np.ndarray
    magnetization: Optional[np.ndarray]
    node_mean: Optional[np.ndarray]
    pair_mean: Optional[np.ndarray]
    states: Optional[np.ndarray]
    sweeps: int
    seconds: float


def _as_int(v: Any, name: str, minimum: int, maximum: Optional[int] = MAX_STEPS) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an int, got bool")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an int, got {type(v).__name__}") from None
    if i < minimum:
        raise ValueError(f"'{name}': must be >= {minimum}, got {i}")
    if maximum is not None and i > maximum:
        raise ValueError(f"'{name}': must be <= {maximum}, got {i}")
    return i


def _aligned64(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data starts on a 64-byte boundary."""
    a = np.asarray(a)
    buf = np.empty(a.nbytes + 64, dtype=np.uint8)
    off = -buf.ctypes.data % 64
    out = buf[off : off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _pack_spins(s: np.ndarray) -> np.ndarray:
    """+/-1 int8 states (n, C) -> uint32 words (n, ceil(C / 32)), bit c % 32 of
    word c / 32 set when chain c is up (little-endian bit order)."""
    n, C = s.shape
    W = (C + 31) // 32
    bits = np.zeros((n, 32 * W), dtype=bool)
    bits[:, :C] = s > 0
    return np.ascontiguousarray(np.packbits(bits, axis=1, bitorder="little").view("<u4"))


def _unpack_spins(words: np.ndarray, C: int) -> np.ndarray:
    b = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=1, bitorder="little")[:, :C]
    return (2 * b.astype(np.int8) - 1).astype(np.int8)


def _edges_graph(nodes: Any, edges: Any, weights: Any) -> tuple[CSRGraph, list]:
    if isinstance(nodes, (int, np.integer)):
        node_list = list(range(int(nodes)))
    else:
        node_list = list(nodes)
    index = {v: k for k, v in enumerate(node_list)}
    if len(index) != len(node_list):
        raise ValueError("'nodes': duplicate nodes")
    try:
        pairs = [(index[a], index[b]) for a, b in edges]
    except KeyError as exc:
        raise ValueError(f"'edges': unknown node {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError("'edges': expected a sequence of (node, node) pairs") from None
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != len(pairs):
        raise ValueError(f"'weights': expected one weight per edge ({len(pairs)}), got {w.size}")
    i = np.array([p[0] for p in pairs], dtype=np.int64)
    j = np.array([p[1] for p in pairs], dtype=np.int64)
    return graph_from_edges(len(node_list), i, j, w, "edges"), node_list
