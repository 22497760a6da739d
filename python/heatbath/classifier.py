"""A judge for generated images that needs no network download: a small
classifier that heatbath trains on the training set, the class accuracy of
conditional samples under it, and the Frechet distance between Gaussians
fitted to its features.

* :class:`MLPClassifier` -- a multilayer perceptron (leaky ReLU, softmax
  cross-entropy, Adam; :mod:`heatbath.nn`), numpy or cupy.
* :func:`frechet_distance` -- ``|m1 - m2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2
  S1^1/2)^1/2)`` between the means and covariances of two feature sets. In
  the classifier's features (``MLPClassifier.features``) this is the
  construction of the FID with heatbath's classifier in place of Inception:
  a *classifier-feature Frechet distance*, not comparable with FID values.
  It is biased upwards for finite samples, so compare it with the same
  distance between as many training and test images (the floor).
* :func:`conditional_accuracy` -- the fraction of samples that the classifier
  assigns to the class they were generated for.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Optional, Sequence

import numpy as np

from . import nn

__all__ = ["MLPClassifier", "conditional_accuracy", "frechet_distance"]


def _rows(X: Any, name: str, n_features: Optional[int] = None, dtype: Any = np.float32) -> np.ndarray:
    if hasattr(X, "get") and not isinstance(X, np.ndarray):
        X = X.get()
    a = np.asarray(X)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected numbers, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(
            f"'{name}': expected a non-empty 2-D array (n_samples, n_features), got shape {a.shape}"
        )
    if n_features is not None and a.shape[1] != n_features:
        raise ValueError(f"'{name}': expected {n_features} features, got {a.shape[1]}")
    a = a.astype(dtype)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"'{name}': contains NaN or infinite values")
    return a


def _labels(y: Any, n: int, name: str = "y") -> np.ndarray:
    a = np.asarray(y.get() if hasattr(y, "get") and not isinstance(y, np.ndarray) else y)
    if a.dtype.kind not in "iu":
        raise TypeError(f"'{name}': expected integer class labels, got dtype {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"'{name}': expected shape ({n},), got {a.shape}")
    if a.size and a.min() < 0:
        raise ValueError(f"'{name}': class labels must be >= 0")
    return a.astype(np.int64)


def _pos_int(v: Any, name: str) -> int:
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None
    if v < 1:
        raise ValueError(f"'{name}': must be >= 1, got {v}")
    return v


class MLPClassifier:
    """A multilayer perceptron classifier trained by Adam on the softmax
    cross-entropy.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths (the last one is the feature layer).
    epochs, batch_size : int
    learning_rate : float
    seed : int
        Initialization and minibatch order (numpy ``default_rng``).
    xp : module
        numpy or cupy.

    Attributes (after ``fit``): ``n_classes_``, ``n_features_in_``, ``history_``
    (mean training loss per epoch).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (256, 128),
        epochs: int = 8,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        seed: int = 0,
        xp=np,
    ) -> None:
        self.hidden = tuple(_pos_int(h, "hidden") for h in hidden)
        if not self.hidden:
            raise ValueError("'hidden': need at least one hidden layer (the features)")
        self.epochs = _pos_int(epochs, "epochs")
        self.batch_size = _pos_int(batch_size, "batch_size")
        if not (
            isinstance(learning_rate, (int, float)) and learning_rate > 0 and math.isfinite(learning_rate)
        ):
            raise ValueError(f"'learning_rate': must be a positive number, got {learning_rate!r}")
        self.learning_rate, self.seed, self.xp = float(learning_rate), int(seed), xp

    def fit(self, X: Any, y: Any) -> "MLPClassifier":
        Xh = _rows(X, "X")
        yh = _labels(y, Xh.shape[0])
        xp = self.xp
        self.n_features_in_ = Xh.shape[1]
        self.n_classes_ = int(yh.max()) + 1
        rng = np.random.default_rng(self.seed)
        self.net_ = nn.MLP(
            (self.n_features_in_, *self.hidden, self.n_classes_), rng=rng, xp=xp, dtype=np.float32
        )
        opt = nn.Adam(self.net_, lr=self.learning_rate)
        Xd, yd = xp.asarray(Xh), xp.asarray(yh)
        n = Xh.shape[0]
        self.history_ = []
        for _ in range(self.epochs):
            perm = xp.asarray(rng.permutation(n))
            total = 0.0
            for a in range(0, n, self.batch_size):
                idx = perm[a : a + self.batch_size]
                xb, yb = Xd[idx], yd[idx]
                self.net_.zero_grad()
                logits = self.net_.forward(xb)
                p = _softmax(xp, logits)
                m = xb.shape[0]
                total += float(-xp.log(p[xp.arange(m), yb] + 1e-12).sum())
                p[xp.arange(m), yb] -= 1.0
                self.net_.backward(p / m)
                opt.step()
            self.history_.append(total / n)
        return self

    def _check(self, X: Any) -> Any:
        if not hasattr(self, "net_"):
            raise ValueError("this MLPClassifier is not fitted yet: call fit(X, y) first")
        return self.xp.asarray(_rows(X, "X", self.n_features_in_))

    def _host(self, a: Any) -> np.ndarray:
        return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)

    def predict_proba(self, X: Any, batch: int = 4096) -> np.ndarray:
        """Class probabilities, float64 (n, n_classes)."""
        Xd = self._check(X)
        out = [
            self._host(_softmax(self.xp, self.net_.forward(Xd[a : a + batch])))
            for a in range(0, Xd.shape[0], batch)
        ]
        return np.concatenate(out).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class, int64 (n,)."""
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        pred = self.predict(X)
        return float((pred == _labels(y, pred.shape[0])).mean())

    def features(self, X: Any, batch: int = 4096) -> np.ndarray:
        """Activations of the last hidden layer, float64 (n, hidden[-1])."""
        Xd = self._check(X)
        layers = self.net_.layers[:-1]
        out = []
        for a in range(0, Xd.shape[0], batch):
            h = Xd[a : a + batch]
            for layer in layers:
                h = layer.forward(h)
            out.append(self._host(h))
        return np.concatenate(out).astype(np.float64)


def _softmax(xp, z: Any) -> Any:
    z = z - z.max(axis=1, keepdims=True)
    e = xp.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def frechet_distance(a: Any, b: Any) -> float:
    """The Frechet (2-Wasserstein) distance squared between Gaussians with
    the means and covariances of feature sets ``a`` (n, k) and ``b`` (m, k):
    ``|m_a - m_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``
    (covariances with ddof 1; matrix square roots by symmetric
    eigendecomposition, negative rounding eigenvalues set to 0)."""
    fa = _rows(a, "a", dtype=np.float64)
    fb = _rows(b, "b", fa.shape[1], dtype=np.float64)
    if fa.shape[0] < 2 or fb.shape[0] < 2:
        raise ValueError("'a', 'b': need at least 2 rows each for a covariance")
    ma, mb = fa.mean(axis=0), fb.mean(axis=0)
    Sa, Sb = np.atleast_2d(np.cov(fa, rowvar=False)), np.atleast_2d(np.cov(fb, rowvar=False))
    ra = _psd_sqrt(Sa)
    M = ra @ Sb @ ra
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (M + M.T)), 0.0, None)).sum()
    d = float(((ma - mb) ** 2).sum() + np.trace(Sa) + np.trace(Sb) - 2.0 * cross)
    return max(d, 0.0)


def conditional_accuracy(classifier: MLPClassifier, samples: Any, labels: Any) -> float:
    """Fraction of ``samples`` (n, n_features) that ``classifier`` assigns to
    the class in ``labels`` (n,) they were generated for."""
    pred = classifier.predict(samples)
    return float((pred == _labels(labels, pred.shape[0], "labels")).mean())
