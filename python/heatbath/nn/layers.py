"""Layers with explicit forward and backward passes.

Inputs must be finite: a layer's ``forward`` checks its input (one pass over
it) and raises ValueError naming it when it holds NaN or infinity, unless
``check_finite`` is False. A network built of layers (:class:`Sequential`,
the models of :mod:`heatbath.nn.models`) checks its own inputs once and turns
its children's checks off; set ``net.check_finite = False`` to skip the
check altogether (the caller then vouches for its inputs)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from .._guard import MAX_VALUES, as_int, check_values


def _xp(a: Any):
    from .._backend import array_namespace

    return array_namespace(a)


def _size(v: Any, name: str) -> int:
    """A layer size: an int >= 1."""
    return as_int(v, name, 1, MAX_VALUES)


class Module:
    """Base class: ``params`` and ``grads`` are dicts of arrays of the same
    shapes; ``forward`` caches what ``backward`` needs; ``backward(dy)``
    returns dL/dx and adds parameter gradients into ``grads``.

    ``check_finite`` (default True): whether ``forward`` checks its inputs
    for NaN and infinity (see the module's notes)."""

    check_finite = True

    def __init__(self) -> None:
        self.params: Dict[str, Any] = {}
        self.grads: Dict[str, Any] = {}
        self.children: List[Tuple[str, "Module"]] = []

    def add(self, name: str, child: "Module") -> "Module":
        self.children.append((name, child))
        return self.inner(child)

    @staticmethod
    def inner(child: "Module") -> "Module":
        """``child`` as a part of a larger network: its own input check off
        (the network checks its input once)."""
        child.check_finite = False
        for _, c in child.children:
            Module.inner(c)
        return child

    def _check(self, x: Any, name: str = "x") -> None:
        if not self.check_finite:
            return
        if not hasattr(x, "dtype") or x.dtype.kind not in "biuf":
            raise TypeError(f"'{name}': expected an array of real numbers, got {type(x).__name__}")
        if not bool(_xp(x).isfinite(x).all()):
            raise ValueError(f"'{name}': contains NaN or infinite values ({type(self).__name__}.forward)")

    def _check_steps(self, t: Any, n: int, n_steps: int, name: str = "t") -> None:
        if not self.check_finite:
            return
        if not hasattr(t, "dtype") or t.dtype.kind not in "iu":
            raise TypeError(f"'{name}': expected integer steps, got {getattr(t, 'dtype', type(t).__name__)}")
        if tuple(t.shape) != (n,):
            raise ValueError(f"'{name}': expected shape ({n},), got {tuple(t.shape)}")
        if n and (int(t.min()) < 0 or int(t.max()) >= n_steps):
            raise ValueError(f"'{name}': steps must lie in [0, {n_steps}), got [{int(t.min())}, {int(t.max())}]")

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Any, Any]]:
        """(name, parameter, gradient) of this module and its children."""
        for k, v in self.params.items():
            yield prefix + k, v, self.grads[k]
        for name, c in self.children:
            yield from c.named_parameters(prefix + name + ".")

    def zero_grad(self) -> None:
        for _, _, g in self.named_parameters():
            g[...] = 0

    def state_dict(self) -> Dict[str, Any]:
        return {k: v for k, v, _ in self.named_parameters()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        own = {k: v for k, v, _ in self.named_parameters()}
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(f"'state': missing parameters {missing}, unexpected {extra}")
        for k, v in own.items():
            src = state[k]
            if tuple(src.shape) != tuple(v.shape):
                raise ValueError(f"'state': parameter {k} has shape {tuple(src.shape)}, expected {tuple(v.shape)}")
            if src.dtype.kind not in "biuf":
                raise ValueError(f"'state': parameter {k} has dtype {src.dtype}, expected real numbers")
            if not bool(_xp(src).isfinite(src).all()):
                raise ValueError(f"'state': parameter {k} holds NaN or infinite values")
        for k, v in own.items():
            v[...] = _xp(v).asarray(state[k], dtype=v.dtype)

    def _param(self, name: str, value: Any) -> Any:
        self.params[name] = value
        self.grads[name] = _xp(value).zeros_like(value)
        return value


class Dense(Module):
    """y = x W + b. x: (n, n_in) -> (n, n_out). Glorot-uniform init."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, xp=np, dtype=np.float64,
                 scale: float = 1.0) -> None:
        super().__init__()
        n_in, n_out = _size(n_in, "n_in"), _size(n_out, "n_out")
        check_values(n_in * n_out, ("n_in", "n_out"), f"a {n_in} x {n_out} weight matrix")
        lim = scale * np.sqrt(6.0 / (n_in + n_out))
        self.W = self._param("W", xp.asarray(rng.uniform(-lim, lim, size=(n_in, n_out)), dtype=dtype))
        self.b = self._param("b", xp.zeros(n_out, dtype=dtype))
        self._x = None

    def forward(self, x: Any) -> Any:
        self._check(x)
        if x.ndim != 2 or x.shape[1] != self.W.shape[0]:
            raise ValueError(f"'x': expected shape (n, {self.W.shape[0]}), got {tuple(x.shape)}")
        self._x = x
        return x @ self.W + self.b

    def backward(self, dy: Any) -> Any:
        self.grads["W"] += self._x.T @ dy
        self.grads["b"] += dy.sum(axis=0)
        return dy @ self.W.T


class Tanh(Module):
    def forward(self, x: Any) -> Any:
        self._check(x)
        self._y = _xp(x).tanh(x)
        return self._y

    def backward(self, dy: Any) -> Any:
        return dy * (1 - self._y**2)


class Sigmoid(Module):
    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = _xp(x)
        self._y = 0.5 * (1 + xp.tanh(0.5 * x))
        return self._y

    def backward(self, dy: Any) -> Any:
        return dy * self._y * (1 - self._y)


class ReLU(Module):
    def forward(self, x: Any) -> Any:
        self._check(x)
        self._m = x > 0
        return x * self._m

    def backward(self, dy: Any) -> Any:
        return dy * self._m


class LeakyReLU(Module):
    def __init__(self, slope: float = 0.05) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: Any) -> Any:
        self._check(x)
        self._m = _xp(x).where(x > 0, 1.0, self.slope).astype(x.dtype)
        return x * self._m

    def backward(self, dy: Any) -> Any:
        return dy * self._m


class Softplus(Module):
    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = _xp(x)
        self._x = x
        return xp.logaddexp(0, x)

    def backward(self, dy: Any) -> Any:
        return dy * 0.5 * (1 + _xp(dy).tanh(0.5 * self._x))


class Sequential(Module):
    def __init__(self, *layers: Module) -> None:
        super().__init__()
        self.layers = list(layers)
        for i, l in enumerate(self.layers):
            self.add(str(i), l)

    def forward(self, x: Any) -> Any:
        self._check(x)
        for l in self.layers:
            x = l.forward(x)
        return x

    def backward(self, dy: Any) -> Any:
        for l in reversed(self.layers):
            dy = l.backward(dy)
        return dy


class NormalizedRBF(Module):
    """Normalized radial basis functions:
    phi_k(x) = exp(-|x - c_k|^2 / (2 w^2)) / sum_j exp(-|x - c_j|^2 / (2 w^2)).

    x: (n, d) -> (n, K). Centers c (K, d) and the log width are trainable.
    """

    def __init__(self, centers: Any, width: float, xp=np, dtype=np.float64) -> None:
        super().__init__()
        self.c = self._param("c", xp.asarray(centers, dtype=dtype))
        self.log_w = self._param("log_w", xp.asarray([np.log(width)], dtype=dtype))

    def forward(self, x: Any) -> Any:
        self._check(x)
        if x.ndim != 2 or x.shape[1] != self.c.shape[1]:
            raise ValueError(f"'x': expected shape (n, {self.c.shape[1]}), got {tuple(x.shape)}")
        xp = _xp(x)
        diff2 = (x * x).sum(1, keepdims=True) - 2 * x @ self.c.T + (self.c * self.c).sum(1)[None, :]
        inv = xp.exp(-2 * self.log_w)  # 1 / w^2
        a = -0.5 * diff2 * inv
        a = a - a.max(axis=1, keepdims=True)
        e = xp.exp(a)
        phi = e / e.sum(axis=1, keepdims=True)
        self._x, self._phi, self._d2, self._inv = x, phi, diff2, inv
        return phi

    def backward(self, dphi: Any) -> Any:
        phi, x, inv = self._phi, self._x, self._inv
        # softmax backward: da = phi * (dphi - sum(dphi * phi))
        da = phi * (dphi - (dphi * phi).sum(axis=1, keepdims=True))
        # a = -0.5 |x - c|^2 / w^2
        # da/dx = -(x - c) / w^2 ; da/dc = (x - c) / w^2 ; da/dlog_w = |x - c|^2 / w^2
        s = da.sum(axis=1, keepdims=True)
        dx = -(s * x - da @ self.c) * inv
        self.grads["c"] += (da.T @ x - da.sum(axis=0)[:, None] * self.c) * inv
        self.grads["log_w"] += (da * self._d2).sum() * inv
        return dx


def bump_basis(n_steps: int, n_basis: int) -> np.ndarray:
    """Normalized Gaussian bump functions over the steps, as in the 2015
    paper's temporal readout: (n_steps, n_basis), rows summing to 1."""
    n_steps, n_basis = _size(n_steps, "n_steps"), _size(n_basis, "n_basis")
    check_values(n_steps * n_basis, ("n_steps", "n_basis"), f"{n_steps} x {n_basis} bump functions")
    xx = np.linspace(-1, 1, n_steps)
    centers = np.linspace(-1, 1, n_basis)
    width = (centers[1] - centers[0]) / 2 if n_basis > 1 else 1.0
    b = np.exp(-((xx[:, None] - centers[None, :]) ** 2) / (2 * width**2))
    return b / b.sum(axis=1, keepdims=True)


def sinusoidal_embedding(t: Any, dim: int, max_period: float = 10000.0) -> Any:
    """Transformer-style embedding of (possibly fractional) steps: (n,) -> (n, dim)."""
    import operator

    xp = _xp(t)
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"'dim': expected an int, got {type(dim).__name__}") from None
    if not 1 <= dim <= 2**16:
        raise ValueError(f"'dim': must lie in [1, 65536], got {dim}")
    if not (isinstance(max_period, (int, float, np.number)) and 1 < float(max_period) < np.inf):
        raise ValueError(f"'max_period': must be a finite number > 1, got {max_period!r}")
    tt = xp.asarray(t)
    if tt.ndim != 1 or tt.dtype.kind not in "iuf":
        raise ValueError(f"'t': expected a 1-D array of steps, got dtype {tt.dtype}, shape {tuple(tt.shape)}")
    if not bool(xp.isfinite(tt).all()):
        raise ValueError("'t': contains NaN or infinite values")
    half = dim // 2
    freqs = xp.exp(-np.log(max_period) * xp.arange(half, dtype=np.float64) / max(half, 1))
    a = xp.asarray(t, dtype=np.float64)[:, None] * freqs[None, :]
    emb = xp.concatenate([xp.cos(a), xp.sin(a)], axis=1)
    if dim % 2:
        emb = xp.concatenate([emb, xp.zeros((emb.shape[0], 1))], axis=1)
    return emb


class TemporalReadout(Module):
    """Per-step readout through bump basis functions (the 2015 paper's
    temporal readout): out[n, o] = sum_j B[t_n, j] (z[n] @ W[:, o, j]) + b[o, j] B[t_n, j].

    z: (n, F), t: (n,) integer steps -> (n, n_out).
    """

    def __init__(self, n_in: int, n_out: int, n_steps: int, n_basis: int, rng: np.random.Generator,
                 xp=np, dtype=np.float64, scale: float = 1.0) -> None:
        super().__init__()
        self.n_out, self.n_basis = n_out, n_basis
        lim = scale * np.sqrt(6.0 / (n_in + n_out))
        self.W = self._param("W", xp.asarray(rng.uniform(-lim, lim, size=(n_in, n_out * n_basis)), dtype=dtype))
        self.b = self._param("b", xp.zeros(n_out * n_basis, dtype=dtype))
        self.basis = xp.asarray(bump_basis(n_steps, n_basis), dtype=dtype)

    def forward(self, z: Any, t: Any) -> Any:
        self._check(z, "z")
        if z.ndim != 2 or z.shape[1] != self.W.shape[0]:
            raise ValueError(f"'z': expected shape (n, {self.W.shape[0]}), got {tuple(z.shape)}")
        self._check_steps(t, z.shape[0], self.basis.shape[0])
        B = self.basis[t]  # (n, nb)
        y = (z @ self.W + self.b).reshape(z.shape[0], self.n_out, self.n_basis)
        self._z, self._B = z, B
        return (y * B[:, None, :]).sum(axis=2)

    def backward(self, dout: Any) -> Any:
        dy = (dout[:, :, None] * self._B[:, None, :]).reshape(dout.shape[0], -1)
        self.grads["W"] += self._z.T @ dy
        self.grads["b"] += dy.sum(axis=0)
        return dy @ self.W.T
