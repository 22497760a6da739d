"""Diffusion samples in shards, equal to ``model.sample(n, seed=seed)``."""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np

from .._guard import MAX_VALUES, as_mask
from .chains import sample_chains
from .plan import _host, _int_at_least


# ---------------------------------------------------------------------------
# wrappers over heatbath's samplers
# ---------------------------------------------------------------------------


def _dpm_shard(model: Any, total: int, start: int, stop: int, seed: int, mask: Any = None,
               known: Any = None) -> np.ndarray:
    if mask is not None and np.ndim(mask) == 2:
        mask = mask[start:stop]
    if known is not None:
        known = known[start:stop]
    return _host(model.sample(stop - start, seed=seed, shard=(start, total), mask=mask, known=known))


def sample_dpm(
    client: Any,
    model: Any,
    n: int,
    *,
    seed: int = 0,
    chunk: Optional[int] = None,
    retries: int = 0,
    mask: Any = None,
    known: Any = None,
) -> np.ndarray:
    """``n`` ancestral samples of a diffusion model (``GaussianDPM``), in
    shards on a Dask cluster; equal to the bit to ``model.sample(n, seed=seed)``
    when the model's network computes each sample independently of the
    others (the default RBF network does).

    Parameters
    ----------
    client : dask.distributed.Client or None
    model : heatbath.diffusion.GaussianDPM
        Shipped to the workers with each shard (it is small).
    n : int
        Number of samples.
    seed, chunk, retries
        As in :func:`sample_chains`.
    mask, known : optional
        Inpainting, as in ``model.sample(n, mask=mask, known=known)``:
        ``mask`` (d,) or (n, d) bool, ``known`` (n, d); each shard gets its
        rows.

    Returns
    -------
    numpy array of shape (n, model.dim)
    """
    if not hasattr(model, "sample"):
        raise TypeError(f"'model': expected a diffusion model with sample(), got {type(model).__name__}")
    n = _int_at_least(n, "n", 1, MAX_VALUES)
    if known is not None:
        if mask is None:
            raise ValueError("'mask': needed with 'known'")
        known = np.asarray(known)
        if known.ndim != 2 or known.shape[0] != n:
            raise ValueError(f"'known': expected shape ({n}, d), got {known.shape}")
    if mask is not None:
        mask = as_mask(mask, "mask")
        if mask.ndim == 2 and mask.shape[0] != n:
            raise ValueError(f"'mask': expected shape (d,) or ({n}, d), got {mask.shape}")
    fn = functools.partial(_dpm_shard, model, n, mask=mask, known=known)
    return sample_chains(client, fn, n, seed, chunk=chunk, retries=retries)
