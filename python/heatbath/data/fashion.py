"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017) from files already on the
machine: 28x28 grey images of 10 kinds of clothing, 60,000 for training and
10,000 for testing, binarized for the Bernoulli models. heatbath never
downloads it; on Debian and Ubuntu ``apt-get install dataset-fashion-mnist``
puts the four gzipped IDX files in ``/usr/share/datasets/fashion-mnist``.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, Optional

import numpy as np

from .idx import load_idx_dir

__all__ = ["CLASSES", "DEFAULT_DIRS", "FashionSplit", "fashion_mnist", "find_fashion_mnist"]

#: The class names, in label order.
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Folders searched when no path is given (after ``$HEATBATH_FASHION_MNIST``).
DEFAULT_DIRS = ("/usr/share/datasets/fashion-mnist",)

INSTALL_HINT = (
    "Fashion-MNIST is not installed: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) puts it in "
    "/usr/share/datasets/fashion-mnist; or pass the folder holding train-images-idx3-ubyte[.gz], "
    "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] "
    "(or set HEATBATH_FASHION_MNIST to it). heatbath downloads nothing."
)


class FashionSplit(NamedTuple):
    """Binarized images ``X_*`` uint8 (n, 784) of 0/1 and labels ``y_*`` int64 (n,)."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def find_fashion_mnist(path: Optional[str] = None) -> str:
    """The folder holding the Fashion-MNIST IDX files: ``path`` if given,
    else ``$HEATBATH_FASHION_MNIST``, else the Debian package's folder.
    FileNotFoundError with the installation hint when none has them."""
    if path is not None:
        cands = [os.fspath(path)]
    else:
        env = os.environ.get("HEATBATH_FASHION_MNIST")
        cands = ([env] if env else []) + list(DEFAULT_DIRS)
    for d in cands:
        if os.path.isdir(d) and any(f.startswith("train-images") for f in os.listdir(d)):
            return d
    where = ", ".join(cands)
    raise FileNotFoundError(f"no Fashion-MNIST IDX files in {where}. {INSTALL_HINT}")


def fashion_mnist(
    path: Optional[str] = None,
    threshold: float = 0.1,
    *,
    limit: Optional[int] = None,
    test_limit: Optional[int] = None,
    **kwargs: Any,
) -> FashionSplit:
    """Fashion-MNIST, binarized: a pixel is 1 where ``pixel / 255 > threshold``
    (0.1, as in the denoising-thermodynamic-model experiments).

    Parameters
    ----------
    path : str, optional
        Folder with the IDX files (see :func:`find_fashion_mnist`).
    threshold : float in [0, 1]
    limit, test_limit : int, optional
        Keep the first ``limit`` training and ``test_limit`` test images.

    Returns
    -------
    FashionSplit
    """
    d = find_fashion_mnist(path)
    tr = load_idx_dir(d, "train", binarize=threshold, limit=limit, **kwargs)
    te = load_idx_dir(d, "test", binarize=threshold, limit=test_limit, **kwargs)
    if tr.y is None or te.y is None:
        raise FileNotFoundError(
            f"'path': {d} lacks the label files (train-labels-idx1-ubyte, "
            f"t10k-labels-idx1-ubyte). {INSTALL_HINT}"
        )
    return FashionSplit(tr.X, te.X, tr.y, te.y)
