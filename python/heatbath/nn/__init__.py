"""Small neural networks that heatbath trains itself, written once for numpy
and cupy (the array module follows the parameters), with hand-written
backward passes (checked against finite differences in the tests).

Every layer caches what its backward pass needs during ``forward`` and
accumulates parameter gradients in ``grads`` during ``backward``; matrix
products go to numpy/cupy (BLAS/cuBLAS), nothing loops over samples.
"""

from __future__ import annotations

from .layers import (
    Dense,
    LeakyReLU,
    Module,
    NormalizedRBF,
    ReLU,
    Sequential,
    Sigmoid,
    Softplus,
    Tanh,
    TemporalReadout,
    bump_basis,
    sinusoidal_embedding,
)
from .models import MLP, RBFNet, TimeMLP
from .optim import Adam

__all__ = [
    "Adam",
    "Dense",
    "LeakyReLU",
    "MLP",
    "Module",
    "NormalizedRBF",
    "RBFNet",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "TemporalReadout",
    "TimeMLP",
    "bump_basis",
    "sinusoidal_embedding",
]
