"""Denoising thermodynamic models: a bit-flip diffusion whose reverse steps are
sparse Boltzmann machines sampled by block Gibbs sweeps, the monolithic
baseline (MEBM) on the same graph, and mixing diagnostics."""

from __future__ import annotations

from . import mixing
from .forward import BitFlipForward, forward_coupling, time_grid
from .graphs import DTMGraph, grid_graph, make_graph, place_visible, torus_graph
from .mixing import MixingReport
from .model import DTM, MEBM

__all__ = [
    "DTM",
    "MEBM",
    "BitFlipForward",
    "DTMGraph",
    "MixingReport",
    "forward_coupling",
    "grid_graph",
    "make_graph",
    "mixing",
    "place_visible",
    "time_grid",
    "torus_graph",
]
