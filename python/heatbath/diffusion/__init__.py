"""Diffusion probabilistic models: Gaussian and binomial diffusion, samplers,
the bound K, training."""

from __future__ import annotations

__all__: list[str] = []
