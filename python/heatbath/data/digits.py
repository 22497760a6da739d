"""scikit-learn's handwritten digits (8x8, 1797 images, shipped with
scikit-learn, never downloaded), binarized, with a fixed train/test split."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["DigitsSplit", "binarized_digits", "N_TEST"]

#: Number of test images of the fixed split (the other 1,497 are for training).
N_TEST = 300
_SPLIT_SEED = 2008  # Philox key of the fixed permutation (Salakhutdinov and Murray's year)


class DigitsSplit(NamedTuple):
    """Binarized digits: ``X_*`` of shape (n, 64) with 0/1 values, ``y_*`` int64 labels."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def binarized_digits(threshold: int = 8, dtype: Any = "float32") -> DigitsSplit:
    """The 1797 digits images of scikit-learn, pixel >= ``threshold`` (of
    0..16) -> 1, split by a fixed permutation into 1,497 training and 300 test
    images (the same on every machine and version: the permutation is the
    argsort of Philox uniforms under a fixed key).

    Parameters
    ----------
    threshold : int in 1..16
    dtype : numpy dtype of X (default float32)

    Returns
    -------
    DigitsSplit
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits data ship with scikit-learn: `pip install scikit-learn`") from exc
    if not 1 <= int(threshold) <= 16:
        raise ValueError(f"'threshold': expected an int in 1..16, got {threshold!r}")
    from .. import random as hr

    d = load_digits()
    X = (d.data >= int(threshold)).astype(dtype)
    y = d.target.astype(np.int64)
    perm = np.argsort(hr.uniform(X.shape[0], _SPLIT_SEED, dtype="float64"), kind="stable")
    test, train = perm[:N_TEST], perm[N_TEST:]
    return DigitsSplit(X[train], X[test], y[train], y[test])
