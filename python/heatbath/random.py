"""Counter-based random numbers: Philox4x32-10, the same streams on CPU and GPU.

Every draw is addressed by ``(seed, offset)`` (and an optional ``stream``
number): element ``i`` of a draw of ``n`` values is element ``offset + i`` of
the stream, a pure function of ``(seed, stream, offset + i)``. So the same
seed gives the same numbers with any thread count, any split of the array into
chunks (drawing ``[0, n)`` equals drawing ``[0, k)`` then ``[k, n)`` with
``offset=k``), on the CPU and on the GPU; a run resumes exactly from
``(seed, offset)``.

Offsets count values of the kind drawn: a float32 uniform or normal, or a
Bernoulli bit, consumes one 32-bit word; a float64 or an integer consumes two.
Use different ``stream`` numbers for draws that must be independent under one
seed.

Examples
--------
>>> import numpy as np, heatbath.random as hr
>>> x = hr.uniform(1000, seed=42)
>>> bool(np.all((x > 0) & (x < 1)))
True
>>> a = hr.normal(10, seed=7)
>>> b = np.concatenate([hr.normal(4, seed=7), hr.normal(6, seed=7, offset=4)])
>>> bool(np.array_equal(a, b))
True
"""

from __future__ import annotations

import operator
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _backend, _core

__all__ = ["philox4x32_10", "uniform", "normal", "bernoulli", "integers", "as_seed"]

_U64 = 1 << 64
ShapeLike = Union[int, Sequence[int], None]


def as_seed(seed: Any, name: str = "seed") -> int:
    """A 64-bit seed from an int, a numpy integer, a ``numpy.random.Generator``
    (one uint64 is drawn from it) or None (fresh OS entropy)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, _U64, dtype=np.uint64, endpoint=False))
    return _as_u64(seed, name)


def _as_u64(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(value).__name__}") from None
    if not 0 <= v < _U64:
        raise ValueError(f"'{name}': must lie in [0, 2**64), got {v}")
    return v


def _as_shape(shape: ShapeLike) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (int(shape),)
    try:
        dims = tuple(operator.index(d) for d in shape)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"'shape': expected an int or a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"'shape': dimensions must be non-negative, got {dims}")
    if int(np.prod(dims, dtype=object)) > 2**40:
        raise ValueError(f"'shape': {dims} holds more than 2**40 values")
    return dims


def _check_offset(offset: Any, n: int) -> int:
    off = _as_u64(offset, "offset")
    # Element indices offset + i are 64-bit: the draw must not wrap.
    if off + n > _U64:
        raise ValueError(f"'offset': offset + size ({off} + {n}) runs past the end of the stream")
    return off


def _check_out(out: Any, allowed: Sequence[str]) -> None:
    if not (isinstance(out, np.ndarray) or _backend.is_cupy(out)):
        raise TypeError(f"'out': expected a numpy or cupy array, got {type(out).__name__}")
    if np.dtype(out.dtype).name not in allowed:
        raise TypeError(f"'out': expected dtype {' or '.join(allowed)}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"'out': array must be C-contiguous (got strides {out.strides} for shape {out.shape})")
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError("'out': array is read-only")


def _resolve_out(shape: ShapeLike, dtype: Any, out: Any, device: Optional[str], allowed: Sequence[str]):
    """The output array: ``out`` checked against shape/dtype, or a new one."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"'device': expected 'cpu' or 'cuda', got {device!r}")
    if out is not None:
        _check_out(out, allowed)
        if shape is not None and tuple(out.shape) != _as_shape(shape):
            raise ValueError(f"'out': shape {tuple(out.shape)} does not match 'shape' {_as_shape(shape)}")
        if dtype is not None and np.dtype(dtype) != np.dtype(out.dtype):
            raise TypeError(f"'out': dtype {out.dtype} does not match 'dtype' {np.dtype(dtype)}")
        if device == "cuda" and not _backend.is_cupy(out):
            raise ValueError("'out': device='cuda' needs a cupy array")
        return out
    if shape is None:
        raise TypeError("'shape': give a shape or an 'out' array")
    dims = _as_shape(shape)
    dt = np.dtype(allowed[0] if dtype is None else dtype)
    if dt.name not in allowed:
        raise TypeError(f"'dtype': expected {' or '.join(allowed)}, got {dt}")
    if device == "cuda":
        return _backend.cupy_module().empty(dims, dtype=dt)
    return np.empty(dims, dtype=dt)


def _fill_float(kind: str, shape, seed, offset, dtype, out, stream, device):
    out = _resolve_out(shape, dtype, out, device, ("float32", "float64"))
    words = 2 if out.dtype == np.float64 else 1
    s, sid = as_seed(seed), _as_u64(stream, "stream")
    off = _check_offset(offset, int(out.size))
    if _backend.is_cupy(out):
        cu = _backend.cuda_module()
        fn = cu.fill_uniform if kind == "uniform" else cu.fill_normal
        with _backend.on_device(out):
            fn(_backend.device_pointer(out), int(out.size), words == 2, s, sid, off, _backend.current_stream())
    else:
        fn = _core.fill_uniform if kind == "uniform" else _core.fill_normal
        fn(out, s, sid, off)
    return out


def uniform(
    shape: ShapeLike,
    seed: Any,
    offset: int = 0,
    dtype: Any = "float32",
    out: Any = None,
    *,
    stream: int = 0,
    device: Optional[str] = None,
):
    """Uniform draws strictly inside (0, 1).

    Parameters
    ----------
    shape : int or tuple of int, or None
        Output shape; may be None when ``out`` is given.
    seed : int, numpy.random.Generator or None
        64-bit key of the stream.
    offset : int
        Index of the first value in the stream.
    dtype : {"float32", "float64"}
        float32 values are ``(k + 1/2) 2^-23`` (23 random bits), float64
        values ``(k + 1/2) 2^-52`` (52 bits, two words each); both exact.
    out : numpy or cupy array, optional
        C-contiguous float32/float64 array to fill in place. A cupy array runs
        on the GPU on the current cupy stream.
    stream : int
        Stream number: independent streams under one seed.
    device : {"cpu", "cuda"}, optional
        Where to allocate the result when ``out`` is not given.

    Returns
    -------
    numpy or cupy array of ``shape`` and ``dtype``.
    """
    return _fill_float("uniform", shape, seed, offset, dtype, out, stream, device)


def normal(
    shape: ShapeLike,
    seed: Any,
    offset: int = 0,
    dtype: Any = "float32",
    out: Any = None,
    *,
    stream: int = 0,
    device: Optional[str] = None,
):
    """Standard normal draws (Box-Muller on Philox words).

    float32: each pair of words gives two normals; the radius uses 31 bits, so
    |z| reaches 6.66. float64: each block of four words gives two normals from
    two 52-bit uniforms. Parameters are those of :func:`uniform`.
    """
    return _fill_float("normal", shape, seed, offset, dtype, out, stream, device)


def bernoulli(
    p: Any,
    seed: Any,
    offset: int = 0,
    out: Any = None,
    *,
    shape: ShapeLike = None,
    stream: int = 0,
    device: Optional[str] = None,
):
    """Bernoulli(p) bits: ``word < floor(p 2^32)``, exact for float32 and float64 p.

    Parameters
    ----------
    p : array_like or float
        Probabilities in [0, 1] (NaN or values outside raise ValueError). A
        scalar is broadcast to ``shape`` or to ``out``.
    out : numpy or cupy array of bool, uint8 or int8, optional
    shape : tuple, optional
        Output shape for a scalar ``p``.

    Returns
    -------
    bool array (or ``out``) of p's shape.
    """
    on_gpu = _backend.is_cupy(p) or _backend.is_cupy(out) or device == "cuda"
    xp = _backend.cupy_module() if on_gpu else np
    p_arr = xp.asarray(p)
    if p_arr.dtype not in (np.float32, np.float64):
        if p_arr.dtype.kind not in "biuf":
            raise TypeError(f"'p': expected probabilities (a float array), got dtype {p_arr.dtype}")
        p_arr = p_arr.astype(np.float64)
    if p_arr.ndim == 0:
        target = _as_shape(shape) if shape is not None else (tuple(out.shape) if out is not None else ())
    else:
        target = tuple(p_arr.shape)
        if shape is not None and _as_shape(shape) != target:
            raise ValueError(f"'shape': {_as_shape(shape)} does not match p's shape {target}")
    out = _resolve_out(target, None, out, "cuda" if on_gpu else device, ("bool", "uint8", "int8"))
    p_arr = xp.ascontiguousarray(p_arr).reshape(-1)  # flat; a scalar is one broadcast element
    s, sid = as_seed(seed), _as_u64(stream, "stream")
    off = _check_offset(offset, int(out.size))
    if on_gpu:
        if not (_backend.is_cupy(out) and _backend.is_cupy(p_arr)):
            raise ValueError("'out': p and out must both be on the GPU (cupy) or both on the CPU (numpy)")
        cp = _backend.cupy_module()
        cu = _backend.cuda_module()
        with _backend.on_device(out):
            bad = cp.zeros(1, dtype=cp.int64)
            cu.fill_bernoulli(
                _backend.device_pointer(p_arr), p_arr.dtype == np.float64, 0 if p_arr.size == 1 else 1,
                _backend.device_pointer(out), int(out.size), _backend.device_pointer(bad),
                s, sid, off, _backend.current_stream(),
            )
            nbad = int(bad.get()[0])
        if nbad:
            raise ValueError(f"'p': {nbad} probabilities are NaN or outside [0, 1]")
    else:
        _core.fill_bernoulli(p_arr, out.reshape(-1), s, sid, off)
    return out


def integers(
    low: int,
    high: Optional[int] = None,
    shape: ShapeLike = None,
    seed: Any = None,
    offset: int = 0,
    out: Any = None,
    *,
    stream: int = 0,
    device: Optional[str] = None,
):
    """Uniform integers in ``[low, high)`` (numpy's convention: one bound means
    ``[0, low)``), int64, by 64-bit multiply-shift; bias at most
    ``(high - low) / 2^64``. Each value consumes two words."""
    if high is None:
        low, high = 0, low
    lo, hi = _as_int(low, "low"), _as_int(high, "high")
    if hi <= lo:
        raise ValueError(f"'high': must be greater than low, got low={lo}, high={hi}")
    if lo < -(1 << 63) or hi > (1 << 63):
        raise ValueError("'low'/'high': the range must fit in int64")
    rng = hi - lo  # 1 .. 2^64; 2^64 is passed as 0
    out = _resolve_out(shape, None, out, device, ("int64",))
    s, sid = as_seed(seed), _as_u64(stream, "stream")
    off = _check_offset(offset, int(out.size))
    if _backend.is_cupy(out):
        cu = _backend.cuda_module()
        with _backend.on_device(out):
            cu.fill_integers(_backend.device_pointer(out), int(out.size), lo, rng % _U64, s, sid, off,
                             _backend.current_stream())
    else:
        _core.fill_integers(out.reshape(-1), lo, rng % _U64, s, sid, off)
    return out


def _as_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None


def philox4x32_10(counter: Any, key: Any):
    """The raw Philox4x32-10 bijection.

    Parameters
    ----------
    counter : uint32 array of shape (..., 4)
    key : uint32 array of shape (..., 2), broadcast against counter's leading dims

    Returns
    -------
    uint32 array of shape (..., 4) (numpy, or cupy for cupy inputs)
    """
    on_gpu = _backend.is_cupy(counter) or _backend.is_cupy(key)
    xp = _backend.cupy_module() if on_gpu else np
    c = xp.asarray(counter)
    k = xp.asarray(key)
    for name, a, w in (("counter", c, 4), ("key", k, 2)):
        if a.dtype != np.uint32:
            raise TypeError(f"'{name}': expected dtype uint32, got {a.dtype}")
        if a.ndim < 1 or a.shape[-1] != w:
            raise ValueError(f"'{name}': expected shape (..., {w}), got {tuple(a.shape)}")
    try:
        lead = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    except ValueError:
        raise ValueError(
            f"'key': leading shape {tuple(k.shape[:-1])} does not broadcast with counter's {tuple(c.shape[:-1])}"
        ) from None
    c = xp.ascontiguousarray(xp.broadcast_to(c, lead + (4,)))
    k = xp.ascontiguousarray(xp.broadcast_to(k, lead + (2,)))
    out = xp.empty(lead + (4,), dtype=np.uint32)
    if on_gpu:
        cu = _backend.cuda_module()
        with _backend.on_device(out):
            cu.philox4x32_10(_backend.device_pointer(c), _backend.device_pointer(k), _backend.device_pointer(out),
                             int(out.size // 4), _backend.current_stream())
    else:
        _core.philox4x32_10(c, k, out)
    return out
