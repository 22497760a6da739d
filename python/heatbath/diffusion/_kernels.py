"""The fused Gaussian-diffusion step kernel and the array plumbing around it.

Every sampler step is one call of :func:`fused_step`, the per-element map of
``csrc/heatbath/diffusion.h``::

    x0  = clip(px * x + pm * m) * scale      (formed as ps (a + r b), see set_x0)
    out = ax * x + am * m + c0 * x0 + ch * h + std * z

with one float64 coefficient row per sample (or one row for all). numpy
arrays run on ``heatbath._core``, cupy arrays on ``heatbath._cuda``; torch and
jax tensors are taken by DLPack (:func:`to_backend`) and the results handed
back in the caller's framework (:func:`from_backend`). :func:`layout` and
:func:`as_rows` give the 2-D views the kernel takes: one row per sample for
per-sample timesteps, else one row for the whole array.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional, Tuple

import numpy as np

from .. import _backend, _core

__all__ = ["NCOEF", "new_coefs", "fused_step", "to_backend", "from_backend", "Step", "layout", "as_rows"]

NCOEF = 13
AX, AM, C0, CH, PS, R, LO, HI, SCALE, SIGMA, MINLOG, MAXLOG, SWAP = range(NCOEF)
VAR_SIGMA, VAR_LEARNED_RANGE, VAR_GIVEN = 0, 1, 2


def new_coefs(rows: int) -> np.ndarray:
    """Coefficient rows (rows, NCOEF), float64: all terms off, no clipping."""
    c = np.zeros((rows, NCOEF), dtype=np.float64)
    c[:, LO] = -np.inf
    c[:, HI] = np.inf
    c[:, SCALE] = 1.0
    return c


def set_x0(c: np.ndarray, px: np.ndarray, pm: np.ndarray) -> None:
    """Store the data prediction ``px x + pm m`` as ``ps (a + r b)`` with
    ``|r| <= 1``: ``(a, b) = (x, m)``, ``ps = px``, ``r = pm / px`` when
    ``|px| >= |pm|``, else ``(a, b) = (m, x)``, ``ps = pm``, ``r = px / pm``.
    The kernel forms ``a + r b`` with two fused multiply-adds (r split in a
    hi and a lo part), so x0 keeps full precision where px x and pm m cancel."""
    px = np.broadcast_to(np.asarray(px, dtype=np.float64), c.shape[:1])
    pm = np.broadcast_to(np.asarray(pm, dtype=np.float64), c.shape[:1])
    swap = np.abs(pm) > np.abs(px)
    big = np.where(swap, pm, px)
    small = np.where(swap, px, pm)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(big != 0, small / np.where(big != 0, big, 1.0), 0.0)
    c[:, PS], c[:, R], c[:, SWAP] = big, r, swap.astype(np.float64)


def get_x0(c: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """(px, pm) back from rows written by :func:`set_x0`."""
    swap = c[:, SWAP] != 0
    a, b = c[:, PS], c[:, PS] * c[:, R]
    return np.where(swap, b, a), np.where(swap, a, b)


# ---- frameworks -------------------------------------------------------------


def _framework(x: Any) -> str:
    mod = type(x).__module__.split(".")[0]
    if isinstance(x, np.ndarray):
        return "numpy"
    if _backend.is_cupy(x):
        return "cupy"
    if mod == "torch":
        return "torch"
    if mod in ("jax", "jaxlib"):
        return "jax"
    return "other"


def to_backend(x: Any, name: str) -> Tuple[Any, str]:
    """A numpy or cupy view of ``x`` (no copy for numpy, cupy, and CPU/CUDA
    torch or jax arrays, which cross by DLPack) and the name of its framework.

    Parameters
    ----------
    x : array-like
    name : str
        Argument name for error messages.
    """
    fw = _framework(x)
    if fw in ("numpy", "cupy"):
        return x, fw
    if fw == "torch":
        t = x.detach()
        if t.device.type == "cuda":
            return _backend.cupy_module().from_dlpack(t), fw
        if t.device.type != "cpu":
            raise TypeError(f"'{name}': torch tensors on device {t.device} are not supported (cpu or cuda)")
        return np.from_dlpack(t), fw
    if fw == "jax":
        devs = list(x.devices()) if hasattr(x, "devices") else []
        if devs and devs[0].platform == "gpu":
            return _backend.cupy_module().from_dlpack(x), fw
        return np.from_dlpack(x), fw
    if hasattr(x, "__cuda_array_interface__"):
        return _backend.cupy_module().asarray(x), "cupy"
    try:
        return np.asarray(x), "numpy"
    except Exception:
        raise TypeError(
            f"'{name}': expected an array (numpy, cupy, torch, jax), got {type(x).__name__}"
        ) from None


def from_backend(a: Any, fw: str) -> Any:
    """``a`` (numpy or cupy) as an array of framework ``fw``, by DLPack."""
    if fw in ("numpy", "cupy", "other"):
        return a
    if fw == "torch":
        import torch

        return torch.from_dlpack(a)
    if fw == "jax":
        import jax.numpy as jnp

        return jnp.from_dlpack(a)
    return a


# ---- the kernel -------------------------------------------------------------


def _rows(a: Any) -> Tuple[int, int]:
    """(pointer, row stride in elements) of a 2-D cupy view."""
    return _backend.device_pointer(a), (int(a.strides[0]) // a.itemsize) if a.shape[0] > 1 else int(
        a.shape[1]
    )


def fused_step(
    x: Any,
    coef: np.ndarray,
    out: Any,
    *,
    model_output: Any = None,
    history: Any = None,
    variance: Any = None,
    noise: Any = None,
    x0_out: Any = None,
    noise_out: Any = None,
    clip: bool = False,
    use_x0: bool = False,
    draw: bool = False,
    var_mode: int = VAR_SIGMA,
    seed: int = 0,
    offset: int = 0,
    stream: int = 0,
    output_name: str = "model_output",
) -> None:
    """One fused step over 2-D views ``[n_samples, inner]`` (rows contiguous).

    Parameters
    ----------
    x, model_output, history, variance, noise : arrays (n_samples, inner)
        Same dtype (float32 or float64), same backend; optional ones may be None.
    coef : numpy.ndarray (n_samples or 1, NCOEF), float64
    out, x0_out, noise_out : C-contiguous arrays (n_samples, inner)
    draw : bool
        Whether the step has a noise term (drawn from Philox (seed, stream,
        offset + flat index) unless ``noise`` is given).
    output_name : str
        Argument named when ``model_output``/``variance`` holds NaN or inf.

    Raises
    ------
    ValueError
        When the model output (or variance) holds NaN or inf values.
    """
    coef = np.ascontiguousarray(coef, dtype=np.float64)
    if _backend.is_cupy(x):
        cu = _backend.cuda_module()
        cp = _backend.cupy_module()
        n, inner = int(x.shape[0]), int(x.shape[1])

        def opt(a: Any) -> Tuple[int, int]:
            return (0, 0) if a is None else _rows(a)

        with _backend.on_device(x):
            dcoef = cp.asarray(coef)
            bad = cp.zeros(1, dtype=cp.int64)
            xp_, xs = _rows(x)
            mp, ms = opt(model_output)
            hp, hs = opt(history)
            vp, vs = opt(variance)
            zp, zs = opt(noise)
            cu.diffusion_step(
                x.dtype == np.float64,
                n,
                inner,
                _backend.device_pointer(dcoef),
                0 if coef.shape[0] == 1 else NCOEF,
                xp_,
                xs,
                mp,
                ms,
                hp,
                hs,
                vp,
                vs,
                zp,
                zs,
                _backend.device_pointer(out),
                0 if x0_out is None else _backend.device_pointer(x0_out),
                0 if noise_out is None else _backend.device_pointer(noise_out),
                bool(clip),
                bool(use_x0),
                bool(draw),
                int(var_mode),
                int(seed),
                int(stream),
                int(offset),
                _backend.device_pointer(bad),
                _backend.current_stream(),
            )
            nbad = int(bad.get()[0])
    else:
        nbad = _core.diffusion_step(
            x,
            coef,
            out,
            model_output,
            history,
            variance,
            noise,
            x0_out,
            noise_out,
            bool(clip),
            bool(use_x0),
            bool(draw),
            int(var_mode),
            int(seed),
            int(stream),
            int(offset),
        )
    if nbad:
        raise ValueError(f"'{output_name}': contains NaN or infinite values")


def empty_like(x: Any, shape: Optional[Tuple[int, ...]] = None) -> Any:
    """A new C-contiguous array of x's backend and dtype."""
    xp = _backend.array_namespace(x)
    return xp.empty(x.shape if shape is None else shape, dtype=x.dtype)


class BufferPool:
    """Output buffers recycled once nothing else references them.

    A sampling loop rebinds ``x = scheduler.step(...).prev_sample`` every
    step; allocating two fresh multi-megabyte outputs per step costs more than
    the step itself (page faults on first touch). The pool hands back a buffer
    of the right shape, dtype and device whose only reference is the pool's
    own (any view, DLPack export or user variable keeps it alive and out of
    reach), else allocates one.
    """

    def __init__(self, size: int = 6) -> None:
        self._size = size
        self._bufs: List[Any] = []

    def take(self, like: Any) -> Any:
        """A C-contiguous buffer of ``like``'s shape, dtype and backend."""
        bufs = self._bufs
        for i in range(len(bufs)):
            b = bufs[i]
            # references: the list, b, getrefcount's argument
            if (
                sys.getrefcount(b) == 3
                and b.shape == like.shape
                and b.dtype == like.dtype
                and type(b) is type(like)
                and getattr(b, "device", None) == getattr(like, "device", None)
            ):
                return b
            del b
        b = empty_like(like)
        bufs.append(b)
        if len(bufs) > self._size:
            bufs.pop(0)
        return b


# ---- layouts ----------------------------------------------------------------


class Step:
    """One step's arrays as 2-D views and its per-sample timesteps."""

    __slots__ = ("x", "m", "v", "fw", "t", "rows", "inner", "shape", "scalar_t", "xp")


def layout(x: Any, t: np.ndarray, force_rows: bool) -> Step:
    """2-D view of ``x``: one row per sample for per-sample timesteps (or when
    asked), else one row for the whole array."""
    st = Step()
    st.shape = tuple(x.shape)
    st.xp = _backend.array_namespace(x)
    if t.ndim == 0:
        st.scalar_t = True
        if force_rows:
            if x.ndim == 0 or x.shape[0] == 0:
                raise ValueError(f"'sample': expected a batch axis, got shape {tuple(x.shape)}")
            st.rows = int(x.shape[0])
            st.t = np.full(st.rows, int(t), dtype=np.int64)
        else:
            st.rows = 1
            st.t = t.reshape(1)
    elif t.ndim == 1:
        if x.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(
                f"'timestep': {t.shape[0]} per-sample timesteps do not match the batch of 'sample' "
                f"(shape {tuple(x.shape)})"
            )
        st.scalar_t = False
        st.rows = int(t.shape[0])
        st.t = t
    else:
        raise ValueError(f"'timestep': expected an int or a 1-D array (batch,), got shape {t.shape}")
    size = int(np.prod(st.shape)) if st.shape else 1
    st.inner = size // st.rows if st.rows else 0
    xc = x if x.flags.c_contiguous else st.xp.ascontiguousarray(x)
    st.x = xc.reshape(st.rows, st.inner)
    return st


def as_rows(a: Any, st: Step, name: str) -> Any:
    """``a`` (an argument named ``name`` beside the sample) as rows of ``st``'s
    2-D layout, after checking its shape, dtype and device against the sample's."""
    if tuple(a.shape) != st.shape:
        raise ValueError(f"'{name}': shape {tuple(a.shape)} does not match 'sample' shape {st.shape}")
    if a.dtype != st.x.dtype:
        raise TypeError(f"'{name}': dtype {a.dtype} does not match 'sample' dtype {st.x.dtype}")
    if _backend.is_cupy(a) != _backend.is_cupy(st.x):
        raise ValueError(f"'{name}': must be on the same device as 'sample'")
    ac = a if a.flags.c_contiguous else st.xp.ascontiguousarray(a)
    return ac.reshape(st.rows, st.inner)
