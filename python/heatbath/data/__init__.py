"""Built-in data sets: generated, or shipped with an installed package; never
downloaded. IDX files (MNIST, Fashion-MNIST) that the user already has are read
by :mod:`heatbath.data.idx`; :func:`fashion_mnist` finds Debian's
``dataset-fashion-mnist`` package."""

from __future__ import annotations

from .digits import binarized_digits
from .fashion import fashion_mnist
from .idx import load_idx_dataset, load_idx_dir, read_idx, write_idx
from .toy import heartbeat, split, swiss_roll

__all__: list[str] = [
    "binarized_digits",
    "fashion_mnist",
    "heartbeat",
    "load_idx_dataset",
    "load_idx_dir",
    "read_idx",
    "split",
    "swiss_roll",
    "write_idx",
]
