"""Chain states of a :class:`~heatbath.ebm.SparseIsing` read and written in the
engine's own packed layout, for samplers that run many short sweep calls (the
reverse steps of a denoising thermodynamic model): node rows move between
engines as uint32 words (bit c % 32 of word c // 32 is chain c, 1 = up) on
the engine's device, with no unpacking, transposing or re-checking of the
whole state, and an engine can be restarted under a new seed instead of being
rebuilt.

Typical loop (inputs clamped once when the engines are built)::

    for eng in engines:
        reseed(eng, seed_of_this_call)
        random_rows(eng, latent, seed, stream)
        set_rows(eng, visible, x_words)
        set_rows(eng, inputs, x_words)
        eng.sweep(K)
        x_words = get_rows(eng, visible)
    x = unpack_rows(x_words, n_chains)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend
from .. import random as hr
from .sparse import SparseIsing, _unpack_spins

__all__ = ["get_rows", "random_rows", "reseed", "set_rows", "unpack_rows"]


def _check_model(model: Any) -> None:
    if not isinstance(model, SparseIsing):
        raise TypeError(f"'model': expected a heatbath.ebm.SparseIsing, got {type(model).__name__}")


def _nodes(model: SparseIsing, nodes: Any) -> np.ndarray:
    idx = np.asarray(nodes)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"'nodes': expected integer node indices, got dtype {idx.dtype}")
    idx = idx.astype(np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= model.n_nodes):
        raise ValueError(f"'nodes': indices must lie in [0, {model.n_nodes})")
    return model._to_device(idx)  # cupy gathers/scatters with device indices


def _words(model: SparseIsing) -> int:
    return (model.n_chains + 31) // 32


def reseed(model: SparseIsing, seed: Any, sweeps_done: int = 0) -> None:
    """Make the next sweeps draw the random numbers of a model built with
    ``seed`` that has run ``sweeps_done`` sweeps (same graph, colouring,
    clamped nodes and state give bit-equal results)."""
    _check_model(model)
    sd = int(sweeps_done)
    if sd < 0:
        raise ValueError(f"'sweeps_done': must be >= 0, got {sweeps_done}")
    model.seed = hr.as_seed(seed)
    model._sweep = sd


def get_rows(model: SparseIsing, nodes: Any):
    """Packed states of ``nodes``: uint32 (len(nodes), ceil(n_chains / 32)),
    a copy on the model's device (numpy or cupy)."""
    _check_model(model)
    return model._s[_nodes(model, nodes)]


def set_rows(model: SparseIsing, nodes: Any, words: Any) -> None:
    """Write packed states (as returned by :func:`get_rows`, on the model's
    device) into ``nodes``; clamped nodes keep the written values."""
    _check_model(model)
    idx = _nodes(model, nodes)
    shape = (idx.size, _words(model))
    if model.device == "cuda" and not _backend.is_cupy(words):
        raise TypeError("'words': the model runs on cuda; expected a cupy array")
    if model.device == "cpu" and _backend.is_cupy(words):
        raise TypeError("'words': the model runs on the cpu; expected a numpy array")
    if words.dtype != np.uint32:
        raise TypeError(f"'words': expected uint32 packed states, got dtype {words.dtype}")
    if tuple(words.shape) != shape:
        raise ValueError(f"'words': expected shape {shape}, got {tuple(words.shape)}")
    model._s[idx] = words


def random_rows(model: SparseIsing, nodes: Any, seed: Any, stream: int = 0, offset: int = 0) -> None:
    """Set ``nodes`` to independent fair +/-1 spins in every chain (Philox of
    (seed, stream), words from ``offset``; the padding bits past n_chains are
    random too and never read)."""
    _check_model(model)
    idx = _nodes(model, nodes)
    shape = (idx.size, _words(model))
    dev = "cuda" if model.device == "cuda" else None
    w = hr.integers(0, 1 << 32, shape, seed, offset=offset, stream=stream, device=dev)
    model._s[idx] = w.astype(np.uint32)


def unpack_rows(words: Any, n_chains: int) -> np.ndarray:
    """Packed rows (numpy or cupy, shape (n_rows, words)) -> int8 +/-1 spins
    of shape (n_chains, n_rows), numpy."""
    if _backend.is_cupy(words):
        words = words.get()
    w = np.asarray(words)
    if w.dtype != np.uint32 or w.ndim != 2:
        raise TypeError(f"'words': expected 2-D uint32 packed states, got {w.dtype} {w.shape}")
    if not 0 < int(n_chains) <= 32 * w.shape[1]:
        raise ValueError(f"'n_chains': must lie in [1, {32 * w.shape[1]}], got {n_chains}")
    return np.ascontiguousarray(_unpack_spins(w, int(n_chains)).T)
