"""Energy-based models: restricted Boltzmann machines, lattice and sparse-graph
Boltzmann machines (Ising, Potts), annealed importance sampling, tempering."""

from __future__ import annotations

from ._estimates import LogZEstimate

__all__ = ["LogZEstimate"]

from .lattice import IsingLattice  # noqa: E402

__all__ += ["IsingLattice"]

from . import ais  # noqa: E402
from .rbm import BernoulliRBM, GaussianBernoulliRBM  # noqa: E402
from .tempering import ParallelTempering  # noqa: E402

__all__ += ["BernoulliRBM", "GaussianBernoulliRBM", "ParallelTempering", "ais"]

from .sparse import SparseIsing, SparsePotts  # noqa: E402

__all__ += ["SparseIsing", "SparsePotts"]
