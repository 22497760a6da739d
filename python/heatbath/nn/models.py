"""Networks for the reverse kernels of the diffusion models."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .layers import Dense, LeakyReLU, Module, NormalizedRBF, Tanh, TemporalReadout, sinusoidal_embedding


class RBFNet(Module):
    """The 2015 paper's network for 2-D data: normalized radial basis
    functions of x_t on a grid, a dense hidden layer, and a per-step readout
    through bump functions of t.

    forward(x (n, d), t (n,) int) -> (n, n_out)
    """

    def __init__(self, d: int, n_out: int, n_steps: int, *, grid: int = 16, extent: float = 2.5,
                 n_hidden: int = 64, n_basis: int = 10, rng: np.random.Generator, xp=np,
                 dtype=np.float64) -> None:
        super().__init__()
        axes = [np.linspace(-extent, extent, grid)] * d
        centers = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        width = 2 * extent / (grid - 1)
        self.rbf = self.add("rbf", NormalizedRBF(centers, width, xp=xp, dtype=dtype))
        self.hidden = self.add("hidden", Dense(centers.shape[0] + d, n_hidden, rng, xp=xp, dtype=dtype))
        self.act = self.inner(Tanh())
        self.readout = self.add("readout", TemporalReadout(n_hidden + centers.shape[0], n_out, n_steps, n_basis,
                                                           rng, xp=xp, dtype=dtype, scale=0.1))
        self._k = centers.shape[0]

    def forward(self, x: Any, t: Any) -> Any:
        self._check(x)
        self._check_steps(t, x.shape[0], self.readout.basis.shape[0])
        phi = self.rbf.forward(x)
        h = self.act.forward(self.hidden.forward(_concat(phi, x)))
        return self.readout.forward(_concat(h, phi), t)

    def backward(self, dout: Any) -> Any:
        dz = self.readout.backward(dout)
        n_h = dz.shape[1] - self._k
        dh, dphi = dz[:, :n_h], dz[:, n_h:]
        dhid = self.hidden.backward(self.act.backward(dh))
        dphi = dphi + dhid[:, : self._k]
        dx = dhid[:, self._k:]
        return dx + self.rbf.backward(dphi)


class MLP(Module):
    """A plain multilayer perceptron: Dense + activation between layers.
    forward(x (n, d_in)) -> (n, d_out)."""

    def __init__(self, sizes: Sequence[int], *, rng: np.random.Generator, xp=np, dtype=np.float64,
                 activation: str = "leaky_relu", out_scale: float = 1.0) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"'sizes': need at least input and output sizes, got {list(sizes)}")
        self.layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            self.layers.append(self.add(f"dense{i}", Dense(a, b, rng, xp=xp, dtype=dtype,
                                                           scale=out_scale if last else 1.0)))
            if not last:
                self.layers.append(self.inner(Tanh() if activation == "tanh" else LeakyReLU()))

    def forward(self, x: Any) -> Any:
        self._check(x)
        for l in self.layers:
            x = l.forward(x)
        return x

    def backward(self, dy: Any) -> Any:
        for l in reversed(self.layers):
            dy = l.backward(dy)
        return dy


class TimeMLP(Module):
    """An MLP on [x_t, embedding(t)] with a per-step bump readout:
    forward(x (n, d), t (n,) int) -> (n, n_out)."""

    def __init__(self, d: int, n_out: int, n_steps: int, *, hidden: Sequence[int] = (128, 128),
                 n_embed: int = 16, n_basis: int = 10, rng: np.random.Generator, xp=np,
                 dtype=np.float64) -> None:
        super().__init__()
        self.n_steps, self.n_embed = n_steps, n_embed
        self.body = self.add("body", MLP([d + n_embed, *hidden], rng=rng, xp=xp, dtype=dtype))
        self.act = self.inner(LeakyReLU())
        self.readout = self.add("readout", TemporalReadout(hidden[-1], n_out, n_steps, n_basis, rng, xp=xp,
                                                           dtype=dtype, scale=0.1))
        self._d = d

    def forward(self, x: Any, t: Any) -> Any:
        self._check(x)
        self._check_steps(t, x.shape[0], self.n_steps)
        emb = sinusoidal_embedding(1000.0 * t / self.n_steps, self.n_embed).astype(x.dtype)
        h = self.act.forward(self.body.forward(_concat(x, emb)))
        return self.readout.forward(h, t)

    def backward(self, dout: Any) -> Any:
        dh = self.readout.backward(dout)
        dxe = self.body.backward(self.act.backward(dh))
        return dxe[:, : self._d]


def _concat(a: Any, b: Any) -> Any:
    from .._backend import array_namespace

    return array_namespace(a).concatenate([a, b], axis=1)
