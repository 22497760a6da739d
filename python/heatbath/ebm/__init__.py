"""Energy-based models: restricted Boltzmann machines, lattice and sparse-graph
Boltzmann machines (Ising, Potts), annealed importance sampling, tempering."""

from __future__ import annotations

from . import ais
from ._estimates import LogZEstimate
from .lattice import IsingLattice
from .rbm import BernoulliRBM, GaussianBernoulliRBM
from .sparse import SparseIsing, SparsePotts
from .tempering import ParallelTempering

__all__ = [
    "BernoulliRBM",
    "GaussianBernoulliRBM",
    "IsingLattice",
    "LogZEstimate",
    "ParallelTempering",
    "SparseIsing",
    "SparsePotts",
    "ais",
]
