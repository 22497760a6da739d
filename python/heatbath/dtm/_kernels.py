"""The kernels of DTM training and sampling on packed spins: numpy arrays run
on ``heatbath._core``, cupy arrays on ``heatbath._cuda`` (the same formulas,
``csrc/heatbath/dtm.h``, so both give the same bits).

Packed spins are the Gibbs engine's layout: uint32 words (rows, W),
W = ceil(chains / 32), bit c % 32 of word c // 32 is chain c, 1 = up.

- :func:`pack_rows` / :func:`unpack_rows`: 0/1 rows (chains, rows) uint8 to
  packed spins (rows, W) and back;
- :func:`count_moments`: adds to int64 counters, for the chosen nodes, the
  number of chains whose spin is up and, for the chosen pairs, the number of
  chains in which the pair agrees; the float64 moments ``(2 count - n) / n``
  equal the float64 means of the unpacked +/-1 states exactly;
- :func:`adam_step`: one Adam ascent step on the contrastive gradient of a
  DTM step from the counts of both phases, with the new parameters written
  as float32 into the Gibbs engine's arrays.

Nothing here reads device memory from the host: the calls only launch work
on the current cupy stream.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _backend, _core

__all__ = ["adam_step", "count_moments", "pack_rows", "unpack_rows", "xp_of"]


def xp_of(a: Any):
    """numpy or cupy, by the type of ``a``."""
    return _backend.array_namespace(a)


def _check(a: Any, name: str, dtype: Any, shape: Optional[tuple] = None, gpu: Optional[bool] = None) -> None:
    """dtype, C-contiguity, shape and (``gpu``) device of an argument."""
    if gpu is not None and _backend.is_cupy(a) != gpu:
        where = (
            "a cupy array (the other arrays are on the GPU)"
            if gpu
            else "a numpy array (the other arrays are on the CPU)"
        )
        raise TypeError(f"'{name}': expected {where}, got {type(a).__name__}")
    if not (isinstance(a, np.ndarray) or _backend.is_cupy(a)):
        raise TypeError(f"'{name}': expected a numpy or cupy array, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"'{name}': expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"'{name}': array must be C-contiguous")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"'{name}': expected shape {tuple(shape)}, got {tuple(a.shape)}")


def _words(chains: int) -> int:
    return (int(chains) + 31) // 32


def pack_rows(bits: Any, out: Any = None):
    """0/1 rows (chains, rows) uint8 (nonzero = up) -> packed spins (rows,
    ceil(chains / 32)) uint32, padding bits 0; written into ``out`` when given."""
    gpu = _backend.is_cupy(bits)
    _check(bits, "bits", np.uint8, gpu=gpu)
    if bits.ndim != 2:
        raise ValueError(f"'bits': expected shape (chains, rows), got {tuple(bits.shape)}")
    C, R = (int(d) for d in bits.shape)
    if C < 1:
        raise ValueError("'bits': no chains")
    shape = (R, _words(C))
    if out is None:
        out = xp_of(bits).empty(shape, dtype=np.uint32)
    _check(out, "out", np.uint32, shape, gpu)
    if gpu:
        with _backend.on_device(bits):
            _backend.cuda_module().dtm_pack_rows(
                _backend.device_pointer(bits), C, R, _backend.device_pointer(out), _backend.current_stream()
            )
    else:
        _core.dtm_pack_rows(bits, out)
    return out


def unpack_rows(words: Any, chains: int, out: Any = None):
    """Packed spins (rows, ceil(chains / 32)) uint32 -> 0/1 rows (chains,
    rows) uint8 on the same device; written into ``out`` when given."""
    gpu = _backend.is_cupy(words)
    _check(words, "words", np.uint32, gpu=gpu)
    C = int(chains)
    if words.ndim != 2 or C < 1 or words.shape[1] != _words(C):
        raise ValueError(
            f"'words': expected shape (rows, {_words(max(C, 1))}) for {chains} chains, got "
            f"{tuple(words.shape)}"
        )
    R = int(words.shape[0])
    if out is None:
        out = xp_of(words).empty((C, R), dtype=np.uint8)
    _check(out, "out", np.uint8, (C, R), gpu)
    if gpu:
        with _backend.on_device(words):
            _backend.cuda_module().dtm_unpack_rows(
                _backend.device_pointer(words), R, C, _backend.device_pointer(out), _backend.current_stream()
            )
    else:
        _core.dtm_unpack_rows(words, C, out)
    return out


def count_moments(state: Any, chains: int, nodes: Any, up: Any, edge_i: Any, edge_j: Any, agree: Any) -> None:
    """``up[k] +=`` the number of chains with ``state[nodes[k]]`` up;
    ``agree[e] +=`` the number of chains in which ``state[edge_i[e]]`` and
    ``state[edge_j[e]]`` agree. ``state`` (rows, ceil(chains / 32)) uint32;
    node indices int32 (checked against the rows on the CPU; on the GPU the
    caller's), counts int64."""
    gpu = _backend.is_cupy(state)
    C = int(chains)
    _check(state, "state", np.uint32, gpu=gpu)
    if state.ndim != 2 or C < 1 or state.shape[1] != _words(C):
        raise ValueError(
            f"'state': expected shape (rows, {_words(max(C, 1))}) for {chains} chains, got "
            f"{tuple(state.shape)}"
        )
    nn, ne = int(nodes.size), int(edge_i.size)
    _check(nodes, "nodes", np.int32, (nn,), gpu)
    _check(up, "up", np.int64, (nn,), gpu)
    _check(edge_i, "edge_i", np.int32, (ne,), gpu)
    _check(edge_j, "edge_j", np.int32, (ne,), gpu)
    _check(agree, "agree", np.int64, (ne,), gpu)
    if gpu:
        p = _backend.device_pointer
        with _backend.on_device(state):
            _backend.cuda_module().dtm_count_moments(
                p(state),
                C,
                p(nodes),
                nn,
                p(up),
                p(edge_i),
                p(edge_j),
                ne,
                p(agree),
                _backend.current_stream(),
            )
    else:
        _core.dtm_count_moments(state, C, nodes, up, edge_i, edge_j, agree)


def adam_step(
    edge_i: Any,
    edge_j: Any,
    pos: tuple,
    neg: tuple,
    params: dict,
    weight_decay: float,
    cp: float,
    lr: float,
    b1: float,
    b2: float,
    c1: float,
    c2: float,
    eps: float,
    engine_w: Any,
    engine_pos: Any,
    engine_bias: Any,
) -> None:
    """One Adam ascent step of a DTM step's parameters, in place.

    ``pos``, ``neg``: (up counts (n_nodes,), agreement counts (n_edges,),
    values per count) of the positive and negative phase; ``params``: float64
    arrays ``w``, ``mw``, ``vw`` (n_edges,) and ``b``, ``mb``, ``vb``
    (n_nodes,); ``c1``, ``c2`` the bias corrections ``1 - b1^t``,
    ``1 - b2^t``. The new couplings go, as float32, to ``engine_w`` at
    ``engine_pos`` (2 n_edges,) (both CSR entries of each edge), the new
    biases to ``engine_bias[:n_nodes]``."""
    gpu = _backend.is_cupy(params["w"])
    ne, nn = int(params["w"].size), int(params["b"].size)
    for name in ("w", "mw", "vw"):
        _check(params[name], name, np.float64, (ne,), gpu)
    for name in ("b", "mb", "vb"):
        _check(params[name], name, np.float64, (nn,), gpu)
    _check(edge_i, "edge_i", np.int32, (ne,), gpu)
    _check(edge_j, "edge_j", np.int32, (ne,), gpu)
    for tag, (u, a, n) in (("pos", pos), ("neg", neg)):
        _check(u, f"{tag}_up", np.int64, (nn,), gpu)
        _check(a, f"{tag}_agree", np.int64, (ne,), gpu)
        if int(n) < 1:
            raise ValueError(f"'{tag}_n': must be >= 1, got {n}")
    _check(engine_pos, "engine_pos", np.int64, (2 * ne,), gpu)
    _check(engine_w, "engine_w", np.float32, None, gpu)
    _check(engine_bias, "engine_bias", np.float32, None, gpu)
    if engine_bias.size < nn:
        raise ValueError(f"'engine_bias': expected at least {nn} elements, got {engine_bias.size}")
    scalars = (
        float(weight_decay),
        float(cp),
        float(lr),
        float(b1),
        float(b2),
        float(c1),
        float(c2),
        float(eps),
    )
    if gpu:
        p = _backend.device_pointer
        q = params
        with _backend.on_device(q["w"]):
            _backend.cuda_module().dtm_adam_step(
                ne,
                nn,
                p(edge_i),
                p(edge_j),
                p(pos[0]),
                p(pos[1]),
                int(pos[2]),
                p(neg[0]),
                p(neg[1]),
                int(neg[2]),
                p(q["w"]),
                p(q["mw"]),
                p(q["vw"]),
                p(q["b"]),
                p(q["mb"]),
                p(q["vb"]),
                *scalars,
                p(engine_w),
                p(engine_pos),
                p(engine_bias),
                _backend.current_stream(),
            )
    else:
        q = params
        _core.dtm_adam_step(
            edge_i,
            edge_j,
            pos[0],
            pos[1],
            int(pos[2]),
            neg[0],
            neg[1],
            int(neg[2]),
            q["w"],
            q["mw"],
            q["vw"],
            q["b"],
            q["mb"],
            q["vb"],
            *scalars,
            engine_w,
            engine_pos,
            engine_bias,
        )
