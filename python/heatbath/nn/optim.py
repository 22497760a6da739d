"""Optimizers."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .._guard import as_float
from .layers import Module


class Adam:
    """Adam (Kingma and Ba 2015) over a module's parameters, in place.

    ``step()`` applies one update from the gradients in ``module.grads``
    (maximizing when ``maximize=True``) and the caller zeroes them.
    """

    def __init__(self, module: Module, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        lr, eps = as_float(lr, "lr"), as_float(eps, "eps")
        if not 0 < lr < np.inf:
            raise ValueError(f"'lr': must be a positive finite number, got {lr}")
        if not 0 < eps < np.inf:
            raise ValueError(f"'eps': must be a positive finite number, got {eps}")
        try:
            b1, b2 = (as_float(b, "betas") for b in betas)
        except (TypeError, ValueError):
            raise TypeError(f"'betas': expected two numbers, got {betas!r}") from None
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"'betas': both must lie in [0, 1), got {betas!r}")
        self.module, self.lr, self.betas, self.eps, self.maximize = module, lr, (b1, b2), eps, maximize
        self.t = 0
        self.m: Dict[str, Any] = {}
        self.v: Dict[str, Any] = {}
        for name, p, _ in module.named_parameters():
            from .._backend import array_namespace

            xp = array_namespace(p)
            self.m[name] = xp.zeros_like(p)
            self.v[name] = xp.zeros_like(p)

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        sign = 1.0 if self.maximize else -1.0
        for name, p, g in self.module.named_parameters():
            m, v = self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p += sign * self.lr * (m / c1) / ((v / c2) ** 0.5 + self.eps)

    def state_dict(self) -> Dict[str, Any]:
        out = {"t": self.t}
        out.update({f"m.{k}": v for k, v in self.m.items()})
        out.update({f"v.{k}": v for k, v in self.v.items()})
        return out
