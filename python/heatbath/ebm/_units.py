"""What the RBM estimators, AIS, RAISE and parallel tempering share: the
fused kernels of a layer of Bernoulli or Gaussian units, the Philox stream
numbering, argument checks, and :class:`RBMInterface`, the small internal
interface through which the annealing and tempering code reads an RBM (so
that those modules do not import the estimators).
"""

from __future__ import annotations

import operator
from typing import Any, Optional, Protocol, Tuple, Union

import numpy as np

from .. import _backend, _core
from .. import random as hr

__all__ = ["bernoulli_units", "gaussian_units", "RBMInterface"]

# Stream numbers: a purpose tag in the top byte, a running counter below, so
# that no two kernel calls of one model share a stream.
TAG_INIT, TAG_TRAIN, TAG_GIBBS, TAG_SCORE, TAG_AIS, TAG_PT = 1, 2, 3, 4, 5, 6


def stream_of(tag: int, counter: int) -> int:
    """The stream number of a model's ``counter``-th kernel call of purpose ``tag``."""
    return (tag << 56) | (counter & ((1 << 56) - 1))


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------


def _mat_ld(a: Any, name: str) -> int:
    """Row stride in elements of a 2-D array with unit column stride (cupy)."""
    if a.ndim != 2:
        raise ValueError(f"'{name}': expected a 2-D array, got shape {tuple(a.shape)}")
    item = a.dtype.itemsize
    if a.size == 0:
        return a.shape[1]
    if a.shape[1] > 1 and a.strides[1] != item:
        raise ValueError(f"'{name}': columns must be contiguous (unit stride)")
    if a.shape[0] > 1 and (a.strides[0] % item or a.strides[0] < a.shape[1] * item):
        raise ValueError(f"'{name}': rows must have a positive stride of at least one row")
    return a.strides[0] // item if a.shape[0] > 1 else a.shape[1]


def _gpu_check(a: Any, name: str, dtype: Any, shape: Optional[tuple] = None) -> None:
    if not _backend.is_cupy(a):
        raise ValueError(f"'{name}': expected a cupy array like 'x' (all arrays on one device)")
    if a.dtype != dtype:
        raise TypeError(f"'{name}': expected dtype {np.dtype(dtype)} (the dtype of 'x'), got {a.dtype}")
    if shape is not None and tuple(a.shape) != shape:
        raise ValueError(f"'{name}': expected shape {shape}, got {tuple(a.shape)}")
    if a.ndim == 1 and a.size > 1 and a.strides[0] != a.dtype.itemsize:
        raise ValueError(f"'{name}': array must be contiguous")


def bernoulli_units(
    x: Any,
    bias: Any,
    sample: Any = None,
    prob: Any = None,
    *,
    seed: int,
    stream: int,
    offset: int = 0,
    scale: Union[float, Any] = 1.0,
    base: Any = None,
) -> None:
    """One pass over a layer of Bernoulli units, in place.

    ``prob = sigmoid(scale_r * (x + bias) + (1 - scale_r) * base)`` and
    ``sample = [w < floor(prob 2^32)]`` with ``w`` the Philox word of stream
    element ``offset + r * cols + c`` of ``(seed, stream)``: the draw equals
    ``heatbath.random.bernoulli(prob, seed, offset, stream=stream)``.

    Parameters
    ----------
    x : float32 or float64 array of shape (rows, cols), numpy or cupy
        Pre-activations (a GEMM's output); rows may be strided, columns contiguous.
    bias : array of shape (cols,), dtype of x
    sample : array of shape (rows, cols), dtype of x, optional
        Receives 0.0 / 1.0.
    prob : array of shape (rows, cols), dtype of x, optional
        Receives the probabilities; may be ``x`` itself.
    seed, stream, offset : int
        Philox key, stream number and first stream element.
    scale : float or array of shape (rows,)
        Inverse temperature of each row (1 for the model).
    base : array of shape (cols,), optional
        Base-rate biases mixed in with weight ``1 - scale`` (AIS, tempering).

    Raises
    ------
    ValueError
        When ``bias``, ``scale`` or ``base`` holds NaN or infinity, or ``x``
        does (counted by the kernel in its pass over x, on the CPU; the
        outputs are then written but meaningless); when ``sample`` or
        ``prob`` overlaps ``x`` other than ``prob`` being ``x`` itself.
    TypeError
        When an output is not a numpy (or cupy) array.
    """
    seed, stream, offset = (
        hr._as_u64(seed, "seed"),
        hr._as_u64(stream, "stream"),
        hr._as_u64(offset, "offset"),
    )
    if _backend.is_cupy(x):
        dt = x.dtype
        if dt not in (np.float32, np.float64):
            raise TypeError(f"'x': expected dtype float32 or float64, got {dt}")
        ldx = _mat_ld(x, "x")
        rows, cols = x.shape
        _gpu_check(bias, "bias", dt, (cols,))
        ptrs = {}
        for name, a in (("sample", sample), ("prob", prob)):
            if a is None:
                ptrs[name] = (0, cols)
            else:
                _gpu_check(a, name, dt, (rows, cols))
                ptrs[name] = (_backend.device_pointer(a), _mat_ld(a, name))
        sc_ptr, sc_val = 0, 1.0
        if np.ndim(scale) == 0 and not _backend.is_cupy(scale):
            sc_val = float(scale)
        else:
            _gpu_check(scale, "scale", dt, (rows,))
            sc_ptr = _backend.device_pointer(scale)
        if base is not None:
            _gpu_check(base, "base", dt, (cols,))
        cu = _backend.cuda_module()
        with _backend.on_device(x):
            cu.rbm_bernoulli(
                rows,
                cols,
                dt == np.float64,
                _backend.device_pointer(x),
                ldx,
                _backend.device_pointer(bias),
                0 if base is None else _backend.device_pointer(base),
                sc_ptr,
                sc_val,
                ptrs["sample"][0],
                ptrs["sample"][1],
                ptrs["prob"][0],
                ptrs["prob"][1],
                seed,
                stream,
                offset,
                _backend.current_stream(),
            )
        return
    if not isinstance(scale, np.ndarray):
        scale = _as_float(scale, "scale")
    _check_inputs(x, bias)
    _check_outputs(x, {"sample": sample, "prob": prob}, may_alias_x=("prob",))
    _core.rbm_bernoulli(x, bias, sample, prob, scale, base, seed, stream, offset)


def gaussian_units(
    x: Any,
    bias: Any,
    sigma: Union[float, Any],
    sample: Any = None,
    mean: Any = None,
    *,
    seed: int,
    stream: int,
    offset: int = 0,
    scale: Union[float, Any] = 1.0,
) -> None:
    """One pass over a layer of Gaussian units, in place:
    ``mean = bias + sigma * scale_r * x`` and ``sample = mean + sigma * z`` with
    ``z`` the standard normal of stream element ``offset + r * cols + c``
    (that of ``heatbath.random.normal(..., seed, offset, stream=stream)``).

    Parameters
    ----------
    x : float32 or float64 array of shape (rows, cols)
    bias : array of shape (cols,)
    sigma : float or array of shape (cols,)
    sample, mean : arrays of shape (rows, cols), optional
        ``mean`` may be ``x`` itself.
    seed, stream, offset, scale : as in :func:`bernoulli_units`

    Raises
    ------
    ValueError, TypeError
        As :func:`bernoulli_units` (``sigma`` must be finite too).
    """
    seed, stream, offset = (
        hr._as_u64(seed, "seed"),
        hr._as_u64(stream, "stream"),
        hr._as_u64(offset, "offset"),
    )
    if _backend.is_cupy(x):
        dt = x.dtype
        if dt not in (np.float32, np.float64):
            raise TypeError(f"'x': expected dtype float32 or float64, got {dt}")
        ldx = _mat_ld(x, "x")
        rows, cols = x.shape
        _gpu_check(bias, "bias", dt, (cols,))
        ptrs = {}
        for name, a in (("sample", sample), ("mean", mean)):
            if a is None:
                ptrs[name] = (0, cols)
            else:
                _gpu_check(a, name, dt, (rows, cols))
                ptrs[name] = (_backend.device_pointer(a), _mat_ld(a, name))
        vals = {}
        for name, v, n in (("sigma", sigma, cols), ("scale", scale, rows)):
            if np.ndim(v) == 0 and not _backend.is_cupy(v):
                vals[name] = (0, float(v))
            else:
                _gpu_check(v, name, dt, (n,))
                vals[name] = (_backend.device_pointer(v), 1.0)
        cu = _backend.cuda_module()
        with _backend.on_device(x):
            cu.rbm_gaussian(
                rows,
                cols,
                dt == np.float64,
                _backend.device_pointer(x),
                ldx,
                _backend.device_pointer(bias),
                vals["sigma"][0],
                vals["sigma"][1],
                vals["scale"][0],
                vals["scale"][1],
                ptrs["sample"][0],
                ptrs["sample"][1],
                ptrs["mean"][0],
                ptrs["mean"][1],
                seed,
                stream,
                offset,
                _backend.current_stream(),
            )
        return
    if not isinstance(sigma, np.ndarray):
        sigma = _as_float(sigma, "sigma")
    if not isinstance(scale, np.ndarray):
        scale = _as_float(scale, "scale")
    _check_inputs(x, bias)
    _check_outputs(x, {"sample": sample, "mean": mean}, may_alias_x=("mean",))
    _core.rbm_gaussian(x, bias, sigma, sample, mean, scale, seed, stream, offset)


def _check_inputs(x: Any, bias: Any) -> None:
    for name, a in (("x", x), ("bias", bias)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"'{name}': expected a numpy (or cupy) array, got {type(a).__name__}")


def _as_float(v: Any, name: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected a float or an array, got {type(v).__name__}") from None


def _check_outputs(x: Any, outs: dict, may_alias_x: tuple) -> None:
    """Output arguments are numpy arrays written in place (not lists, whose
    temporary copy would be lost), sharing no memory with ``x`` or with each
    other, except those in ``may_alias_x``, which may be ``x`` itself (the
    same elements, not a shifted view)."""
    given = {k: v for k, v in outs.items() if v is not None}
    for name, a in given.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"'{name}': expected a numpy array (written in place), got {type(a).__name__}")
    if not isinstance(x, np.ndarray):
        return
    names = list(given)
    for k, name in enumerate(names):
        a = given[name]
        if np.may_share_memory(a, x) and np.shares_memory(a, x):
            same = (
                name in may_alias_x
                and a.__array_interface__["data"][0] == x.__array_interface__["data"][0]
                and a.strides == x.strides
                and a.shape == x.shape
                and a.dtype == x.dtype
            )
            if not same:
                raise ValueError(f"'{name}': overlaps 'x' (it may be 'x' itself, not a part of it)")
        for other in names[k + 1 :]:
            if np.may_share_memory(a, given[other]) and np.shares_memory(a, given[other]):
                raise ValueError(f"'{name}': overlaps '{other}'")


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


def xp_of(x: Any):
    return _backend.cupy_module() if _backend.is_cupy(x) else np


def to_xp(a: Any, xp) -> Any:
    """``a`` as an array of namespace xp (copied across devices when needed)."""
    if xp is np and _backend.is_cupy(a):
        return a.get()
    return xp.asarray(a)


def seed_from(random_state: Any) -> int:
    """A 64-bit Philox key from an int, a numpy Generator or RandomState, or None."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1)) | (int(random_state.randint(0, 2**31 - 1)) << 31)
    return hr.as_seed(random_state, "random_state")


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(value).__name__}") from None
    if v < 1:
        raise ValueError(f"'{name}': must be >= 1, got {v}")
    if v > 2**62:
        raise ValueError(f"'{name}': must be <= 2**62, got {v}")
    return v


def nonneg_float(value: Any, name: str, upper: Optional[float] = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected a number, got {type(value).__name__}") from None
    if not np.isfinite(v) or v < 0 or (upper is not None and v >= upper):
        bound = f"[0, {upper})" if upper is not None else "[0, inf)"
        raise ValueError(f"'{name}': must lie in {bound}, got {value!r}")
    return v


# ---------------------------------------------------------------------------
# the internal interface of an RBM
# ---------------------------------------------------------------------------


class RBMInterface(Protocol):
    """What AIS, RAISE, parallel tempering and the sharded AIS read of an RBM
    (implemented by ``heatbath.ebm.rbm._RBMBase``): the public attributes
    ``n_features_in_``, ``n_components``, ``components_`` and ``sample``, and
    these five methods."""

    n_features_in_: int
    n_components: int
    components_: Any

    def _check_fitted(self) -> None:
        """Raise NotFittedError unless the model has parameters."""

    def _params(self, xp: Any) -> Tuple[Any, Any, Any]:
        """(W, c, b) as C-contiguous arrays of the model dtype on xp's device."""

    def _X(self, X: Any, name: str = "X", binary: bool = False) -> Any:
        """X checked against the model (2-D, finite, n_features_in_ columns),
        as a C-contiguous array of the model dtype; errors name ``name``."""

    def _visible_sigma(self) -> Optional[np.ndarray]:
        """Standard deviations of Gaussian visible units (float64, (n_features,)),
        None for Bernoulli visible units."""

    def _draw_key(self, tag: int) -> Tuple[int, int]:
        """(seed, stream) of the model's next kernel call of purpose ``tag``."""
