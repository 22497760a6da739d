"""Class-conditional denoising thermodynamic models: the data bits of every
reverse step are the image's pixels plus label nodes, as in the Fashion-MNIST
experiment of Jelincic et al. (2025).

The label of an image is written as a one-hot vector repeated ``label_spots``
times (``n_classes * label_spots`` bits; bit ``k`` is 1 when the class is
``k % n_classes``). The label bits are visible nodes of the graph like the
pixels, but the forward process replaces them by coins at their own, slower
rate (``label_rate``; pixels at ``rate``), so each reverse step has two fixed
input couplings ``w = -1/2 ln tanh(rate dt / 2)``, one for pixel inputs and one
for label inputs. Training is the DTM's (per-step contrastive divergence on
forward-noised pairs of images and labels). Sampling is either *free* (pixels
and labels sampled; the label is read from the label bits by majority over the
spots) or *conditional* (the label nodes clamped to the class at every step).

:class:`LabelledMEBM` is the monolithic baseline on the same graph: one
Boltzmann machine over pixels, labels and latents, sampled free or with its
label nodes clamped.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .. import _backend
from ..ebm.packed_rows import reseed
from ..ebm.sparse import _as_int
from .forward import BitFlipForward, forward_coupling
from .graphs import DTMGraph, make_graph, torus_graph
from ._step import StepEBM, pack_bits, random_words, unpack_bits
from .model import DTM, MEBM, _check_bits, _subseed

__all__ = [
    "LabelledDTM",
    "LabelledMEBM",
    "MixedRateForward",
    "labelled_torus_graph",
    "one_hot_labels",
    "read_labels",
    "set_input_couplings",
]


def one_hot_labels(y: Any, n_classes: int, label_spots: int) -> np.ndarray:
    """Class labels (n,) -> uint8 (n, n_classes * label_spots): the one-hot
    vector of each label, repeated ``label_spots`` times."""
    n_classes = _as_int(n_classes, "n_classes", 1)
    label_spots = _as_int(label_spots, "label_spots", 1)
    lab = _check_labels(y, n_classes)
    base = (lab[:, None] == np.arange(n_classes)[None, :]).astype(np.uint8)
    return np.tile(base, (1, label_spots))


def read_labels(bits: Any, n_classes: int, label_spots: int) -> np.ndarray:
    """Label bits (n, n_classes * label_spots) -> int64 (n,): the class whose
    bits are on in most spots (the lowest such class on a tie)."""
    b = np.asarray(bits)
    if b.ndim != 2 or b.shape[1] != n_classes * label_spots:
        raise ValueError(f"'bits': expected shape (n, {n_classes * label_spots}), got {b.shape}")
    votes = b.reshape(b.shape[0], label_spots, n_classes).sum(axis=1)
    return votes.argmax(axis=1).astype(np.int64)


def _check_labels(y: Any, n_classes: int, n: Optional[int] = None, name: str = "y") -> np.ndarray:
    if hasattr(y, "get") and not isinstance(y, np.ndarray):  # cupy
        y = y.get()
    a = np.asarray(y)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"'{name}': expected integer class labels, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"'{name}': expected a 1-D array of class labels, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"'{name}': expected {n} labels, got {a.shape[0]}")
    if a.size and (a.min() < 0 or a.max() >= n_classes):
        raise ValueError(f"'{name}': labels must lie in [0, {n_classes}), got [{a.min()}, {a.max()}]")
    return a.astype(np.int64)


def labelled_torus_graph(
    side: int = 70,
    image_shape: Sequence[int] = (28, 28),
    n_classes: int = 10,
    label_spots: int = 10,
    offsets: Sequence[tuple] = ((0, 1), (4, 1), (10, 9)),
    seed: int = 0,
) -> DTMGraph:
    """The DTM torus (:func:`~heatbath.dtm.torus_graph`, degree 12 with the
    default offsets) with the pixels spread over it in image order, followed
    by ``n_classes * label_spots`` label nodes at distinct random nodes among
    the rest (numpy ``default_rng(seed)``). Visible nodes: pixels, then labels.
    The default is the Fashion-MNIST graph: 70 x 70 = 4,900 nodes, 784 pixels
    and 100 label nodes."""
    h, w = (int(v) for v in image_shape)
    n_lab = _as_int(n_classes, "n_classes", 1) * _as_int(label_spots, "label_spots", 1)
    base = torus_graph(side, h * w, offsets, "spread", (h, w))
    free = base.latent
    if n_lab > free.size:
        raise ValueError(
            f"'side': a {side}x{side} torus has {free.size} nodes besides the {h * w} pixels, "
            f"too few for {n_lab} label nodes"
        )
    lab = np.random.default_rng(seed).choice(free, size=n_lab, replace=False).astype(np.int64)
    return make_graph(
        base.n_nodes,
        base.edges_i,
        base.edges_j,
        np.concatenate([base.visible, lab]),
        base.colours,
        base.shape,
    )


class MixedRateForward(BitFlipForward):
    """The bit-flip forward process with a rate per data column: ``rates``
    (n_columns,); ``flip_prob`` and ``coupling`` are (T, n_columns). Other
    arguments as :class:`BitFlipForward`; numpy or cupy data."""

    def __init__(
        self, T: int, rates: Any, t_end: float = 3.0, schedule: str = "log", offset: float = 0.15
    ) -> None:
        r = np.asarray(rates, dtype=np.float64).reshape(-1)
        if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
            raise ValueError("'rates': need one positive, finite rate per column")
        super().__init__(T, float(r.max()), t_end, schedule, offset)
        self.rates = r
        dt = np.diff(self.times)
        self.flip_prob = 0.5 * (1.0 - np.exp(-dt[:, None] * r[None, :]))
        self.coupling = forward_coupling(dt[:, None] * r[None, :])

    def agreement(self, t: int) -> np.ndarray:  # type: ignore[override]
        """P(x^t_i = x^0_i) per column."""
        t = self._check_t(t, 0)
        return 0.5 + 0.5 * np.exp(-self.rates * self.times[t])

    def _columns(self, x: Any) -> Any:
        if x.shape[-1] != self.rates.size:
            raise ValueError(f"'x': expected {self.rates.size} columns (one per rate), got shape {x.shape}")
        return _backend.array_namespace(x)

    def noise(self, x0: Any, t: int, seed: Any, offset: int = 0, stream: int = 0) -> Any:
        t = self._check_t(t, 0)
        xp = self._columns(x0)
        x = xp.asarray(x0)
        if t == 0:
            return x.astype(np.uint8)
        p = 0.5 * (1.0 - np.exp(-self.rates * self.times[t]))
        return self._flip(x, xp.asarray(p), seed, offset, stream)

    def step(self, x_prev: Any, t: int, seed: Any, offset: int = 0, stream: int = 0) -> Any:
        t = self._check_t(t, 1)
        xp = self._columns(x_prev)
        return self._flip(xp.asarray(x_prev), xp.asarray(self.flip_prob[t - 1]), seed, offset, stream)


def set_input_couplings(step: StepEBM, couplings: Any) -> None:
    """Give the inputs of a reverse step one fixed coupling each, written into
    the step's float32 engine weights (and its CSR structure's weights); kept
    in ``step.input_couplings``."""
    c = np.asarray(couplings, dtype=np.float64).reshape(-1)
    if c.size != step.n_in:
        raise ValueError(f"'couplings': expected {step.n_in} values (one per input), got {c.size}")
    N, csr = step.N, step.csr
    key = np.repeat(np.arange(N, dtype=np.int64), np.diff(csr.row)) * N + csr.col
    vis = step.graph.visible[: step.n_in].astype(np.int64)
    pos = np.concatenate(
        [np.searchsorted(key, vis * N + step.inputs), np.searchsorted(key, step.inputs * N + vis)]
    )
    vals = np.concatenate([c, c]).astype(np.float32)
    csr.weights[pos] = vals
    step.w32[step.xp.asarray(pos)] = step.xp.asarray(vals)
    step.input_couplings = c.copy()


def _draw_clamped(
    step: StepEBM, n: int, seed: int, rows: list, k: int, beta: Optional[tuple], label_nodes: np.ndarray
) -> Any:
    """Like ``StepEBM.draw`` (returns the packed visible rows) with
    ``label_nodes`` held during the sweeps at the values written in ``rows``."""
    eng = step.sampler(n)
    try:
        reseed(eng, seed)
        eng.set_clamped(np.concatenate([step.inputs, label_nodes]))
        for name, words in rows:
            eng._s[step.index[name]] = words
        step.sweeps(eng, k, 0, beta)
        out = eng._s[step.index["visible"]]
    finally:
        eng.set_clamped(step.inputs)
        step.release(eng)
    return out


class _LabelMixin:
    """Labels: checks, data rows (pixels + label bits), splitting samples."""

    n_classes: int
    label_spots: int

    @property
    def n_label_bits(self) -> int:
        return int(self.n_classes) * int(self.label_spots)

    def _check_label_params(self) -> None:
        _as_int(self.n_classes, "n_classes", 1)
        _as_int(self.label_spots, "label_spots", 1)

    def data_rows(self, X: Any, y: Any) -> np.ndarray:
        """uint8 (n, n_pixels + n_label_bits): the images X (0/1) followed by
        the label bits of y."""
        Xb = _check_bits(X, "X")
        if y is None:
            raise ValueError(f"'y': {type(self).__name__} trains on images and their class labels; give y")
        lab = _check_labels(y, int(self.n_classes), Xb.shape[0])
        return np.concatenate([Xb, one_hot_labels(lab, self.n_classes, self.label_spots)], axis=1)

    def split(self, rows: Any) -> tuple:
        """Sample rows -> (images uint8 (n, n_pixels), labels int64 (n,) read
        from the label bits)."""
        r = np.asarray(rows)
        nb = self.n_label_bits
        return r[:, :-nb], read_labels(r[:, -nb:], self.n_classes, self.label_spots)

    def _clamp_words(self, labels: Any, n: int) -> Any:
        lab = _check_labels(labels, int(self.n_classes), n, "labels")
        return pack_bits(one_hot_labels(lab, self.n_classes, self.label_spots), self.device)

    def _label_nodes(self) -> np.ndarray:
        return self.graph_.visible[-self.n_label_bits :]

    def _build_graph(self, n_features: int) -> DTMGraph:
        nb = self.n_label_bits
        if self.graph is not None:
            if self.graph.n_visible != n_features:
                raise ValueError(
                    f"'graph': {self.graph.n_visible} visible nodes, but the data have {n_features - nb} "
                    f"pixels + {nb} label bits (n_classes {self.n_classes} x label_spots {self.label_spots}) "
                    f"= {n_features}"
                )
            return self.graph
        n_pix = n_features - nb
        if n_pix < 1:
            raise ValueError(f"'X': {n_features} columns leave no pixels beside {nb} label bits")
        w = math.isqrt(n_pix)
        shape = (w, w) if w * w == n_pix else (1, n_pix)
        side = self.side if self.side is not None else 2 * math.ceil(0.75 * math.sqrt(n_features))
        return labelled_torus_graph(int(side), shape, self.n_classes, self.label_spots)


class LabelledDTM(_LabelMixin, DTM):
    """Class-conditional denoising thermodynamic model.

    Parameters
    ----------
    graph : DTMGraph, optional
        Visible nodes: the pixels, then ``n_classes * label_spots`` label
        nodes (:func:`labelled_torus_graph`; built at ``fit`` when not given).
    T, K, rate, t_end, schedule, offset
        As :class:`DTM`; ``rate`` is the pixels' forward rate (default 0.9).
    n_classes, label_spots : int
        The label's one-hot width and its number of copies (default 10 x 10).
    label_rate : float
        The label bits' forward rate (default 0.2).

    Other parameters as :class:`DTM`. ``fit(X, y)`` takes images and labels;
    ``sample(n, labels=...)`` samples conditionally, without ``labels`` freely;
    both return rows of pixels and label bits (:meth:`split` separates them).
    """

    kind = "dtm-labelled"

    def __init__(
        self,
        graph: Optional[DTMGraph] = None,
        T: int = 8,
        K: int = 20,
        rate: float = 0.9,
        t_end: float = 3.0,
        schedule: str = "log",
        offset: float = 0.15,
        n_classes: int = 10,
        label_spots: int = 10,
        label_rate: float = 0.2,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.n_classes, self.label_spots, self.label_rate = n_classes, label_spots, label_rate
        super().__init__(graph, T, K, rate, t_end, schedule, offset, *args, **kwargs)

    def _check_params(self) -> None:
        self._check_label_params()
        lr = self.label_rate
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating)):
            raise TypeError(f"'label_rate': expected a number, got {type(lr).__name__}")
        if not (math.isfinite(float(lr)) and float(lr) > 0):
            raise ValueError(f"'label_rate': must be a positive number, got {lr}")
        super()._check_params()

    def _rates(self, n_visible: int) -> np.ndarray:
        n_pix = n_visible - self.n_label_bits
        if n_pix < 1:
            raise ValueError(
                f"'graph': {n_visible} visible nodes leave no pixels beside {self.n_label_bits} label bits"
            )
        return np.concatenate(
            [np.full(n_pix, float(self.rate)), np.full(self.n_label_bits, float(self.label_rate))]
        )

    def _setup(self, graph: DTMGraph) -> None:
        super()._setup(graph)
        self.forward_ = MixedRateForward(
            self.T, self._rates(graph.n_visible), self.t_end, self.schedule, self.offset
        )
        for k, step in enumerate(self.steps_):
            set_input_couplings(step, self.forward_.coupling[k])

    def fit(self, X: Any, y: Any = None):
        """Train on images X (n, n_pixels) of 0/1 and class labels y (n,)."""
        return super().fit(self.data_rows(X, y))

    def sample(
        self,
        n_samples: int = 100,
        K: Optional[int] = None,
        beta: Any = None,
        seed: Any = None,
        return_steps: bool = False,
        labels: Any = None,
    ) -> Any:
        """``n_samples`` rows of pixels and label bits: free (``labels`` None)
        or with the label nodes clamped to ``labels`` (n_samples,) at every
        step. Other arguments as :meth:`DTM.sample`."""
        if labels is None:
            return super().sample(n_samples, K, beta, seed, return_steps)
        self._check_fitted()
        n = _as_int(n_samples, "n_samples", 1)
        clamp = self._clamp_words(labels, n)
        k, b, s = self._sampling_args(K, "K", beta, seed, 8)
        x = random_words(self.graph_.n_visible, n, s, 99, self.device)  # x^T, packed
        out = [x]
        for t in range(self.T, 0, -1):
            x = self._reverse_clamped(t, x, n, k, b, s, clamp)
            out.append(x)
        if return_steps:
            return [unpack_bits(w, n) for w in out]
        return unpack_bits(x, n)

    def sample_step(
        self,
        t: int,
        x_t: Any,
        n_sweeps: Optional[int] = None,
        beta: Any = None,
        seed: Any = None,
        labels: Any = None,
    ) -> np.ndarray:
        """As :meth:`DTM.sample_step` (``x_t`` rows of pixels and label bits);
        with ``labels`` (n,) the label nodes are clamped to them."""
        if labels is None:
            return super().sample_step(t, x_t, n_sweeps, beta, seed)
        self._check_fitted()
        t = self.forward_._check_t(t, 1)
        xt = _check_bits(x_t, "x_t", self.graph_.n_visible)
        clamp = self._clamp_words(labels, xt.shape[0])
        k, b, s = self._sampling_args(n_sweeps, "n_sweeps", beta, seed, 7)
        x = self._reverse_clamped(t, pack_bits(xt, self.device), xt.shape[0], k, b, s, clamp)
        return unpack_bits(x, xt.shape[0])

    def _reverse_clamped(self, t: int, x: Any, n: int, k: int, beta: Optional[tuple], seed: int, clamp: Any):
        """:meth:`DTM._reverse` with the label nodes clamped to ``clamp``
        (packed label rows); the inputs hold x^t as given."""
        step = self.steps_[t - 1]
        g = self.graph_
        xv = x.copy()
        xv[-self.n_label_bits :] = clamp
        rows = [("visible", xv), ("inputs", x)]
        if g.latent.size:
            rows.insert(0, ("latent", random_words(g.latent.size, n, seed, 100 + t, self.device)))
        return _draw_clamped(step, n, _subseed(seed, 2, t), rows, k, beta, self._label_nodes())

    def mixing(
        self,
        X: Any = None,
        n_chains: int = 256,
        n_sweeps: int = 200,
        warmup: Optional[int] = None,
        seed: Any = 0,
        y: Any = None,
    ) -> list:
        """As :meth:`DTM.mixing`; with ``X`` give the labels ``y`` too."""
        return super().mixing(None if X is None else self.data_rows(X, y), n_chains, n_sweeps, warmup, seed)


class LabelledMEBM(_LabelMixin, MEBM):
    """The monolithic baseline of :class:`LabelledDTM`: one Boltzmann machine
    over pixels, label nodes and latents (``graph`` as there), trained on
    images and labels, sampled with ``K_total`` sweeps freely or with the
    label nodes clamped (``sample(n, labels=...)``)."""

    kind = "mebm-labelled"

    def __init__(
        self,
        graph: Optional[DTMGraph] = None,
        K_total: int = 160,
        n_classes: int = 10,
        label_spots: int = 10,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.n_classes, self.label_spots = n_classes, label_spots
        super().__init__(graph, K_total, *args, **kwargs)

    def _check_params(self) -> None:
        self._check_label_params()
        super()._check_params()

    def fit(self, X: Any, y: Any = None):
        """Train on images X (n, n_pixels) of 0/1 and class labels y (n,)."""
        return super().fit(self.data_rows(X, y))

    def sample(
        self,
        n_samples: int = 100,
        K_total: Optional[int] = None,
        beta: Any = None,
        seed: Any = None,
        labels: Any = None,
    ) -> np.ndarray:
        """``n_samples`` rows of pixels and label bits after ``K_total`` sweeps
        from random spins, free or with the label nodes clamped to ``labels``."""
        if labels is None:
            return super().sample(n_samples, K_total, beta, seed)
        self._check_fitted()
        n = _as_int(n_samples, "n_samples", 1)
        clamp = self._clamp_words(labels, n)
        k, b, s = self._sampling_args(K_total, "K_total", beta, seed, 8)
        step = self.steps_[0]
        words = random_words(step.N, n, s, 100, self.device)
        words[step.xp.asarray(self._label_nodes())] = clamp
        out = _draw_clamped(step, n, _subseed(s, 2), [("all", words)], k, b, self._label_nodes())
        return unpack_bits(out, n)
