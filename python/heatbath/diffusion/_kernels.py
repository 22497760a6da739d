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

__all__ = [
    "NCOEF",
    "new_coefs",
    "fused_step",
    "to_backend",
    "from_backend",
    "check_errors",
    "gpu_rows",
    "Step",
    "layout",
    "as_rows",
]

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
    coef: Optional[np.ndarray],
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
    table: Any = None,
    tsteps: Any = None,
    t_expect: int = -1,
    check: bool = False,
    sample_name: str = "sample",
) -> None:
    """One fused step over 2-D views ``[n_samples, inner]`` (rows contiguous).

    Parameters
    ----------
    x, model_output, history, variance, noise : arrays (n_samples, inner)
        Same dtype (float32 or float64), same backend; optional ones may be None.
    coef : numpy.ndarray (n_samples or 1, NCOEF), float64
        The coefficient rows (None on the GPU when ``table`` and ``tsteps``
        give them).
    out, x0_out, noise_out : C-contiguous arrays (n_samples, inner)
    draw : bool
        Whether the step has a noise term (drawn from Philox (seed, stream,
        offset + flat index) unless ``noise`` is given).
    output_name : str
        Argument named when ``model_output``/``variance`` holds NaN or inf.
    table, tsteps : GPU only
        A device table of rows (:func:`gpu_rows`, shape (T, GPU_ROW)) looked
        up at the device timesteps ``tsteps`` (a 0-d or (n_samples,) int
        array on the GPU): coefficients chosen without the host reading the
        timesteps.
    t_expect : int, GPU only
        With ``tsteps`` and ``coef``: every device timestep must equal this
        (checked by the kernel).
    check : bool, GPU only
        Read the device's error counters right after the step (waits for the
        GPU) instead of leaving them for :func:`check_errors`.
    sample_name : str
        Argument named when ``x`` holds NaN or inf (counted on the CPU).

    Raises
    ------
    ValueError
        When the model output (or variance) or the sample holds NaN or inf
        values: at once on the CPU (the kernel counts them in its pass over
        the data); on the GPU, model outputs only, at the next
        :func:`check_errors` (or at once with ``check=True``).
    """
    if _backend.is_cupy(x):
        _gpu_step(
            x, coef, out, model_output, history, variance, noise, x0_out, noise_out, clip, use_x0, draw,
            var_mode, seed, offset, stream, output_name, table, tsteps, t_expect,
        )
        if check:
            check_errors(x)
        return
    coef = np.ascontiguousarray(coef, dtype=np.float64)
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
    if nbad & 1:
        raise ValueError(f"'{output_name}': contains NaN or infinite values")
    if nbad & 2:
        raise ValueError(f"'{sample_name}': contains NaN or infinite values")
    if nbad:
        raise ValueError("'noise': contains NaN or infinite values")


# ---- the GPU path -------------------------------------------------------------
#
# A GPU step never waits for the device: its coefficients go to the kernel by
# value (one row) or as a device table looked up at device timesteps, and
# non-finite model outputs or bad device timesteps are counted in a
# per-device counter that the caller reads when it chooses (check_errors,
# and heatbath.diffusion.sample once at its end). A step therefore fits in a
# CUDA graph (cupy stream capture).

GPU_ROW = 16
_G_SWAP, _G_VALID = 13, 14
_ERR_NAMES = ("model_output", "x0", "mu", "noise", "sample", "variance", "timestep")
_counters: dict = {}
_row_cache: dict = {}
_EMPTY_ROW = np.zeros(0, dtype=np.float32)


def gpu_rows(coef: np.ndarray, dtype: Any) -> np.ndarray:
    """Coefficient rows (rows, NCOEF) float64 -> (rows, GPU_ROW) in ``dtype``:
    the kernel's layout (csrc/cuda/diffusion.h), r split into a part in the
    state's precision and the rounding remainder, exactly as the CPU kernels
    split it; valid = 1."""
    dt = np.dtype(dtype)
    c = np.asarray(coef, dtype=np.float64).reshape(-1, NCOEF)
    g = np.zeros((c.shape[0], GPU_ROW), dtype=dt)
    r = c[:, R]
    rhi = r.astype(dt).astype(np.float64)
    g[:, [0, 1, 2, 3, 4]] = c[:, [AX, AM, C0, CH, PS]]
    g[:, 5] = rhi
    g[:, 6] = r - rhi
    g[:, [7, 8, 9, 10, 11, 12]] = c[:, [LO, HI, SCALE, SIGMA, MINLOG, MAXLOG]]
    g[:, _G_SWAP] = (c[:, SWAP] != 0).astype(np.float64)
    g[:, _G_VALID] = 1.0
    return g


def _gpu_row(coef: np.ndarray, dtype: Any) -> np.ndarray:
    key = (coef.tobytes(), np.dtype(dtype).char)
    row = _row_cache.get(key)
    if row is None:
        if len(_row_cache) > 4096:
            _row_cache.clear()
        row = _row_cache[key] = gpu_rows(coef, dtype)[0]
    return row


def _device_id(a: Any) -> int:
    return int(a.device.id)


def _error_counter(device_id: int) -> Any:
    c = _counters.get(device_id)
    if c is None:
        cp = _backend.cupy_module()
        with cp.cuda.Device(device_id):
            c = _counters[device_id] = cp.zeros(2 * len(_ERR_NAMES), dtype=cp.int64)
    return c


def _counter_pointer(device_id: int, name: str) -> int:
    slot = _ERR_NAMES.index(name) if name in _ERR_NAMES else 0
    return _backend.device_pointer(_error_counter(device_id)) + 16 * slot


def check_errors(device: Any = None) -> None:
    """Raise what the GPU steps on a device have found since the last check.

    GPU steps never wait for the device, so a NaN or infinite model output
    (or a device timestep the scheduler does not take) is counted on the
    device and reported here; :func:`heatbath.diffusion.sample` calls it once
    at its end. Reading the counters waits for the device; they are reset.

    Parameters
    ----------
    device : int, cupy array or None
        The device (its id, or an array on it); None: the current device.

    Raises
    ------
    ValueError
        Naming the argument whose values were not finite, or 'timestep'.
    """
    if device is None:
        dev = int(_backend.cupy_module().cuda.Device().id)
    elif isinstance(device, (int, np.integer)):
        dev = int(device)
    else:
        dev = _device_id(device)
    c = _counters.get(dev)
    if c is None:
        return
    counts = c.get()
    c.fill(0)
    msgs = []
    for k, name in enumerate(_ERR_NAMES):
        nv, nt = int(counts[2 * k]), int(counts[2 * k + 1])
        if nv:
            msgs.append(f"'{name}': contains NaN or infinite values ({nv} elements in GPU steps since the last check)")
        if nt:
            msgs.append(
                f"'timestep': {nt} elements were stepped with a device timestep that the scheduler does not "
                f"take at that step (out of range, not among its timesteps, or not the expected step)"
            )
    if msgs:
        raise ValueError("; ".join(msgs))


def device_timesteps(t: Any, name: str = "timestep") -> Any:
    """A cupy int view of ``t`` when it lives on a GPU (cupy, CUDA torch or
    jax; no copy, nothing read by the host), else None."""
    fw = _framework(t)
    if fw == "cupy" or (fw in ("torch", "jax") and _on_gpu(t)) or (
        fw == "other" and hasattr(t, "__cuda_array_interface__")
    ):
        a, _ = to_backend(t, name)
        if a.dtype.kind not in "iu" or a.dtype.itemsize not in (4, 8):
            raise TypeError(f"'{name}': expected int32 or int64 device timesteps, got dtype {a.dtype}")
        if a.ndim > 1:
            raise ValueError(f"'{name}': expected a scalar or a 1-D array (batch,), got shape {tuple(a.shape)}")
        return a
    return None


def _on_gpu(t: Any) -> bool:
    if _framework(t) == "torch":
        return t.device.type == "cuda"
    devs = list(t.devices()) if hasattr(t, "devices") else []
    return bool(devs) and devs[0].platform == "gpu"


def device_table(cache: dict, key: Any, like: Any, build: Any) -> Any:
    """A device table of rows cached in ``cache`` under ``key`` (plus the
    dtype and device of ``like``); ``build()`` gives the float64 rows
    (T, NCOEF) and a boolean mask of the valid ones (or None: all valid)."""
    k = (key, np.dtype(like.dtype).char, _device_id(like))
    tab = cache.get(k)
    if tab is None:
        rows, valid = build()
        g = gpu_rows(rows, like.dtype)
        if valid is not None:
            g[~np.asarray(valid, dtype=bool), _G_VALID] = 0.0
        cp = _backend.cupy_module()
        with like.device:
            tab = cache[k] = cp.asarray(g)
    return tab


def _gpu_step(
    x, coef, out, model_output, history, variance, noise, x0_out, noise_out, clip, use_x0, draw, var_mode,
    seed, offset, stream, output_name, table, tsteps, t_expect,
) -> None:
    with _backend.on_device(x):
        _gpu_launch(
            x, coef, out, model_output, history, variance, noise, x0_out, noise_out, clip, use_x0, draw,
            var_mode, seed, offset, stream, output_name, table, tsteps, t_expect,
        )


def _gpu_launch(
    x, coef, out, model_output, history, variance, noise, x0_out, noise_out, clip, use_x0, draw, var_mode,
    seed, offset, stream, output_name, table, tsteps, t_expect,
) -> None:
    cu = _backend.cuda_module()
    n, inner = int(x.shape[0]), int(x.shape[1])

    def opt(a: Any) -> Tuple[int, int]:
        return (0, 0) if a is None else _rows(a)

    mode, row, tab, trows = 0, _EMPTY_ROW, 0, 0
    tp, tb, ts = 0, 0, 0
    if tsteps is not None:
        tp, tb = _backend.device_pointer(tsteps), int(tsteps.dtype.itemsize)
        ts = 0 if tsteps.ndim == 0 or tsteps.shape[0] == 1 else int(tsteps.strides[0]) // tb
        if tsteps.ndim == 1 and tsteps.shape[0] not in (1, n):
            raise ValueError(f"'timestep': {tsteps.shape[0]} device timesteps for {n} samples")
    if coef is not None and coef.shape[0] > 1 and table is None and bool((coef == coef[:1]).all()):
        coef = coef[:1]  # one row for all: by value, nothing uploaded
    if table is not None and tsteps is not None and t_expect < 0:
        mode, tab, trows = 1, _backend.device_pointer(table), int(table.shape[0])
    elif coef is not None and coef.shape[0] == 1:
        row = _gpu_row(coef, x.dtype)
    else:
        rows = table if table is not None else _backend.cupy_module().asarray(gpu_rows(coef, x.dtype))
        mode, tab, trows = 2, _backend.device_pointer(rows), int(rows.shape[0])
    xp_, xs = _rows(x)
    mp, ms = opt(model_output)
    hp, hs = opt(history)
    vp, vs = opt(variance)
    zp, zs = opt(noise)
    cu.diffusion_step(
        x.dtype == np.float64,
        n,
        inner,
        mode,
        row,
        tab,
        trows,
        tp,
        tb,
        ts,
        int(t_expect),
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
        _counter_pointer(_device_id(x), output_name),
        _backend.current_stream(),
    )


_dev_counter_ptr: dict = {}


def gpu_step_flat(
    x: Any, m: Any, out: Any, row: np.ndarray, n: int, clip: bool, draw: bool, seed: int, offset: int, stream: int
) -> None:
    """The lean GPU step of the schedulers' fast path: x, m, out contiguous
    cupy arrays of n elements on one device, one coefficient row (gpu_rows)."""
    cp = _backend.cupy_module()
    dev = x.data.device_id
    cptr = _dev_counter_ptr.get(dev)
    if cptr is None:
        cptr = _dev_counter_ptr[dev] = _counter_pointer(dev, "model_output")
    args = (
        x.dtype.char == "d", 1, n, 0, row, 0, 0, 0, 0, 0, -1, x.data.ptr, n, m.data.ptr, n, 0, 0, 0, 0, 0, 0,
        out.data.ptr, 0, 0, clip, clip, draw, VAR_SIGMA, seed, stream, offset, cptr,
    )
    if dev == cp.cuda.runtime.getDevice():
        _backend.cuda_module().diffusion_step(*args, cp.cuda.get_current_stream().ptr)
    else:
        with cp.cuda.Device(dev):
            _backend.cuda_module().diffusion_step(*args, cp.cuda.get_current_stream().ptr)


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
        self._meta: List[Any] = []

    @staticmethod
    def _key(a: Any) -> Tuple[Any, ...]:
        dev = a.data.device_id if _backend.is_cupy(a) else -1
        return (a.shape, a.dtype, type(a), dev)

    def take(self, like: Any) -> Any:
        """A C-contiguous buffer of ``like``'s shape, dtype and backend."""
        key = self._key(like)
        bufs = self._bufs
        for i in range(len(bufs)):
            # references: the list, getrefcount's argument
            if self._meta[i] == key and sys.getrefcount(bufs[i]) == 2:
                return bufs[i]
        b = empty_like(like)
        bufs.append(b)
        self._meta.append(key)
        if len(bufs) > self._size:
            bufs.pop(0)
            self._meta.pop(0)
        return b


# ---- layouts ----------------------------------------------------------------


class Step:
    """One step's arrays as 2-D views and its per-sample timesteps (host:
    ``t``; on the GPU possibly ``tdev``, device timesteps the host never
    reads)."""

    __slots__ = ("x", "m", "v", "fw", "t", "tdev", "rows", "inner", "shape", "scalar_t", "xp", "name")


def layout(x: Any, t: Any, force_rows: bool, name: str = "sample", t_name: str = "timestep") -> Step:
    """2-D view of ``x``: one row per sample for per-sample timesteps (or when
    asked), else one row for the whole array. ``t`` is a host int64 array
    (checked) or a device int array (checked on the device by the kernel).
    ``name``, ``t_name``: the arguments that errors name."""
    st = Step()
    st.name = name
    st.shape = tuple(x.shape)
    st.xp = _backend.array_namespace(x)
    dev = not isinstance(t, np.ndarray)
    st.tdev = t if dev else None
    if t.ndim == 0:
        st.scalar_t = True
        if force_rows:
            if x.ndim == 0 or x.shape[0] == 0:
                raise ValueError(f"'{name}': expected a batch axis, got shape {tuple(x.shape)}")
            st.rows = int(x.shape[0])
            st.t = None if dev else np.full(st.rows, int(t), dtype=np.int64)
        else:
            st.rows = 1
            st.t = None if dev else t.reshape(1)
    elif t.ndim == 1:
        if x.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(
                f"'{t_name}': {t.shape[0]} per-sample timesteps do not match the batch of '{name}' "
                f"(shape {tuple(x.shape)})"
            )
        st.scalar_t = False
        st.rows = int(t.shape[0])
        st.t = None if dev else t
    else:
        raise ValueError(f"'{t_name}': expected an int or a 1-D array (batch,), got shape {tuple(t.shape)}")
    size = int(np.prod(st.shape)) if st.shape else 1
    st.inner = size // st.rows if st.rows else 0
    xc = x if x.flags.c_contiguous else st.xp.ascontiguousarray(x)
    st.x = xc.reshape(st.rows, st.inner)
    return st


def as_rows(a: Any, st: Step, name: str) -> Any:
    """``a`` (an argument named ``name`` beside the sample) as rows of ``st``'s
    2-D layout, after checking its shape, dtype and device against the sample's."""
    if tuple(a.shape) != st.shape:
        raise ValueError(f"'{name}': shape {tuple(a.shape)} does not match '{st.name}' shape {st.shape}")
    if a.dtype != st.x.dtype:
        raise TypeError(f"'{name}': dtype {a.dtype} does not match '{st.name}' dtype {st.x.dtype}")
    if _backend.is_cupy(a) != _backend.is_cupy(st.x):
        raise ValueError(f"'{name}': must be on the same device as '{st.name}'")
    ac = a if a.flags.c_contiguous else st.xp.ascontiguousarray(a)
    return ac.reshape(st.rows, st.inner)
