"""Sample quality without a network: two-sample distances between generated
samples and held-out data, per-pixel marginals, and mode coverage under a
nearest-neighbour labelling.

* :func:`mmd` -- squared kernel maximum mean discrepancy (Gretton et al.,
  JMLR 2012), the unbiased U-statistic, Gaussian kernel
  ``k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2))`` (for {0, 1} vectors
  ``|a - b|^2`` is the Hamming distance), bandwidth by the median heuristic.
* :func:`energy_distance` -- ``2 E|X - Y| - E|X - X'| - E|Y - Y'|``
  (Szekely and Rizzo), Euclidean distance, U-statistics for the within terms.
* :func:`marginal_error` -- mean and max absolute difference of the per-pixel
  frequencies ``P(pixel = 1)``.
* :func:`class_entropy` -- entropy (nats) of the class histogram of samples
  labelled by their nearest neighbour in a labelled set; ``log(n_classes)``
  when every class is equally covered, 0 when one class takes all.
* :func:`sample_quality` -- all of them against a held-out set, beside the
  floor: the same numbers for a training subset of the same size.
* :func:`baseline_samples` -- samples of heatbath's RBM and binomial diffusion
  model, the baselines of the comparison table.

Both distances are two-sample U-statistics; their standard errors are the
two-sample delete-one jackknife (Arvesen 1969), computed exactly from kernel
row sums, so they cost nothing beyond the estimate. All pairwise work is done
in row blocks of at most ``chunk`` rows, so a few thousand samples of 784
pixels need a few tens of MB.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, NamedTuple

import numpy as np

from . import _backend
from . import random as hr

__all__ = [
    "BASELINES",
    "ClassHistogram",
    "Estimate",
    "MarginalError",
    "baseline_samples",
    "class_entropy",
    "energy_distance",
    "format_quality",
    "marginal_error",
    "median_heuristic",
    "mmd",
    "nearest_neighbour",
    "sample_quality",
]

#: Bytes of one block of pairwise distances (float64); sets the default chunk.
_BLOCK_BYTES = 32 * 2**20


class Estimate(NamedTuple):
    """An estimate and its standard error (two-sample jackknife)."""

    value: float
    stderr: float


class MarginalError(NamedTuple):
    """Mean and max over pixels of ``|P_samples(pixel = 1) - P_reference(pixel = 1)|``."""

    mean: float
    max: float


class ClassHistogram(NamedTuple):
    """``entropy`` in nats of ``counts / counts.sum()``; ``counts[i]`` samples
    were labelled ``classes[i]``."""

    entropy: float
    counts: np.ndarray
    classes: np.ndarray


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


def _samples(a: Any, name: str, dim: int | None = None, other: str = "", min_rows: int = 1) -> np.ndarray:
    """``a`` as a finite float64 (n, d) numpy array; errors name the argument."""
    if _backend.is_cupy(a):
        a = a.get()
    if a is None or isinstance(a, (str, bytes, dict, set)):
        raise TypeError(f"'{name}': expected a 2-D array of numbers, got {type(a).__name__}")
    if hasattr(a, "toarray") or type(a).__module__.startswith("scipy.sparse"):
        raise TypeError(f"'{name}': sparse input is not supported; pass a dense array ({name}.toarray())")
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"'{name}': cannot be converted to an array of numbers ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"'{name}': expected a 2-D array (n_samples, n_features), got shape {arr.shape}; "
            "reshape 1-D data with .reshape(-1, 1)"
        )
    if arr.shape[0] < min_rows:
        raise ValueError(f"'{name}': needs at least {min_rows} sample(s), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"'{name}': 0 features (shape {arr.shape})")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"'{name}': has {arr.shape[1]} features, '{other}' has {dim} (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"'{name}': contains NaN or infinity")
    return arr


def _chunk(chunk: Any, n_cols: int) -> int:
    if chunk is None:
        return max(1, _BLOCK_BYTES // (8 * max(n_cols, 1)))
    if isinstance(chunk, (bool, np.bool_)):
        raise TypeError("'chunk': expected a positive int, got bool")
    try:
        c = operator.index(chunk)
    except TypeError:
        raise TypeError(f"'chunk': expected a positive int, got {type(chunk).__name__}") from None
    if c < 1:
        raise ValueError(f"'chunk': must be >= 1, got {c}")
    return c


def _positive_float(v: Any, name: str) -> float:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected a positive number, got bool")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}': expected a positive number, got {type(v).__name__}") from None
    if not (math.isfinite(f) and f > 0):
        raise ValueError(f"'{name}': must be a positive finite number, got {v!r}")
    return f


# ---------------------------------------------------------------------------
# pairwise sums in row blocks
# ---------------------------------------------------------------------------


def _sq_block(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of the rows of a and b (exact for 0/1 data)."""
    d = a @ b.T
    d *= -2.0
    d += a2[:, None]
    d += b2[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def _row_sums(
    a: np.ndarray, b: np.ndarray, h: Callable[[np.ndarray], np.ndarray], chunk: int, same: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``r_i = sum_j h(|a_i - b_j|^2)`` and ``c_j = sum_i h(...)``, with the
    terms i == j left out when ``same`` (a is b)."""
    a2, b2 = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    rows = np.empty(a.shape[0])
    cols = np.zeros(b.shape[0])
    for s in range(0, a.shape[0], chunk):
        e = min(s + chunk, a.shape[0])
        blk = _sq_block(a[s:e], b, a2[s:e], b2)
        if same:
            i = np.arange(e - s)
            blk[i, s + i] = 0.0  # exact zeros on the diagonal, then dropped below
        blk = h(blk)
        if same:
            blk[i, s + i] = 0.0
        rows[s:e] = blk.sum(axis=1)
        cols += blk.sum(axis=0)
    return rows, cols


def _two_sample(
    x: np.ndarray,
    y: np.ndarray,
    h: Callable[[np.ndarray], np.ndarray],
    sign: float,
    chunk: int,
    unbiased: bool = True,
) -> Estimate:
    """``sign * (U_xx + U_yy - 2 M_xy)`` for the kernel ``h`` of squared
    distances, with its two-sample jackknife standard error."""
    m, n = x.shape[0], y.shape[0]
    rxx, _ = _row_sums(x, x, h, chunk, True)
    ryy, _ = _row_sums(y, y, h, chunk, True)
    axy, byx = _row_sums(x, y, h, chunk, False)
    sxx, syy, sxy = rxx.sum(), ryy.sum(), axy.sum()
    if unbiased:
        value = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)
    else:  # V-statistic: the diagonal terms h(0) are included
        h0 = float(h(np.zeros(1))[0])
        value = (sxx + m * h0) / m**2 + (syy + n * h0) / n**2 - 2.0 * sxy / (m * n)
    value *= sign
    stderr = math.nan
    if unbiased and m >= 3 and n >= 3:
        # leave out x_i: the within sum loses 2 r_i, the cross sum a_i
        uyy = syy / (n * (n - 1))
        tx = (sxx - 2 * rxx) / ((m - 1) * (m - 2)) + uyy - 2 * (sxy - axy) / ((m - 1) * n)
        uxx = sxx / (m * (m - 1))
        ty = uxx + (syy - 2 * ryy) / ((n - 1) * (n - 2)) - 2 * (sxy - byx) / (m * (n - 1))
        var = (m - 1) / m * ((tx - tx.mean()) ** 2).sum() + (n - 1) / n * ((ty - ty.mean()) ** 2).sum()
        stderr = math.sqrt(var)
    return Estimate(float(value), float(stderr))


# ---------------------------------------------------------------------------
# public metrics
# ---------------------------------------------------------------------------


def median_heuristic(x: Any, y: Any = None, *, max_points: int = 1000, seed: int = 0) -> float:
    """Median Euclidean distance between distinct points of the pooled sample
    (x, then y), the bandwidth of :func:`mmd`'s default kernel. Beyond
    ``max_points`` points a fixed random subset (Philox key ``seed``) is used.
    Returns 1.0 when all points coincide.
    """
    x = _samples(x, "x")
    pool = x if y is None else np.concatenate([x, _samples(y, "y", x.shape[1], "x")])
    if isinstance(max_points, (bool, np.bool_)) or not isinstance(max_points, (int, np.integer)):
        raise TypeError(f"'max_points': expected an int, got {type(max_points).__name__}")
    if max_points < 2:
        raise ValueError(f"'max_points': must be >= 2, got {max_points}")
    if pool.shape[0] > max_points:
        keep = np.argsort(hr.uniform(pool.shape[0], seed, dtype="float64"), kind="stable")[:max_points]
        pool = pool[np.sort(keep)]
    if pool.shape[0] < 2:
        return 1.0
    sq = np.einsum("ij,ij->i", pool, pool)
    d = _sq_block(pool, pool, sq, sq)
    iu = np.triu_indices(pool.shape[0], k=1)
    med = float(np.sqrt(np.median(d[iu])))
    return med if med > 0 else 1.0


def mmd(
    x: Any,
    y: Any,
    kernel: str = "gaussian",
    bandwidth: float | None = None,
    *,
    return_stderr: bool = False,
    chunk: int | None = None,
) -> float | Estimate:
    """Squared maximum mean discrepancy between the samples x and y, the
    unbiased U-statistic

    ``MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (n (n-1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n)``,

    whose expectation is the population MMD^2 (so it can be negative; it
    scatters around 0 when x and y come from one distribution).

    Parameters
    ----------
    x : array_like of shape (m, d), m >= 2
        Real or {0, 1} vectors (bool, int or float; numpy or cupy).
    y : array_like of shape (n, d), n >= 2
    kernel : {"gaussian"}
        ``k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2))``, squared Euclidean
        distance (the Hamming distance for {0, 1} vectors).
    bandwidth : float, optional
        Kernel width; default :func:`median_heuristic` of the pooled sample.
        Fix it (e.g. from the held-out data) to compare several models on one
        kernel.
    return_stderr : bool
        Also return the standard error (the two-sample delete-one jackknife of
        the U-statistic; it needs m, n >= 3; conservative when the two
        distributions coincide).
    chunk : int, optional
        Rows per block of pairwise distances (default: blocks of 32 MB).

    Returns
    -------
    float, or Estimate(value, stderr) with ``return_stderr``
    """
    x = _samples(x, "x", min_rows=2)
    y = _samples(y, "y", x.shape[1], "x", min_rows=2)
    if kernel != "gaussian":
        raise ValueError(f"'kernel': expected 'gaussian', got {kernel!r}")
    bw = median_heuristic(x, y) if bandwidth is None else _positive_float(bandwidth, "bandwidth")
    gamma = 1.0 / (2.0 * bw * bw)

    def h(d: np.ndarray) -> np.ndarray:
        d *= -gamma
        return np.exp(d, out=d)

    est = _two_sample(x, y, h, 1.0, _chunk(chunk, max(x.shape[0], y.shape[0])))
    return est if return_stderr else est.value


def energy_distance(
    x: Any, y: Any, *, unbiased: bool = True, return_stderr: bool = False, chunk: int | None = None
) -> float | Estimate:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` with Euclidean
    distance |.|, the square of Szekely and Rizzo's energy distance: zero
    exactly when the distributions are equal.

    Parameters
    ----------
    x : array_like of shape (m, d), m >= 2
    y : array_like of shape (n, d), n >= 2
    unbiased : bool
        True (default): U-statistics for the within terms (pairs i != j), so
        the estimate is unbiased and may be slightly negative. False: the
        V-statistic of the empirical distributions (pairs i == j included),
        which is ``scipy.stats.energy_distance(x, y) ** 2`` in one dimension.
    return_stderr : bool
        Also return the two-sample jackknife standard error (unbiased only).
    chunk : int, optional
        Rows per block of pairwise distances.

    Returns
    -------
    float, or Estimate(value, stderr) with ``return_stderr``
    """
    x = _samples(x, "x", min_rows=2)
    y = _samples(y, "y", x.shape[1], "x", min_rows=2)
    est = _two_sample(x, y, np.sqrt, -1.0, _chunk(chunk, max(x.shape[0], y.shape[0])), bool(unbiased))
    return est if return_stderr else est.value


def marginal_error(samples: Any, reference: Any) -> MarginalError:
    """Mean and max over pixels of ``|mean_i samples[i, p] - mean_j reference[j, p]|``;
    for {0, 1} data the per-pixel ``P(pixel = 1)``.

    Parameters
    ----------
    samples : array_like of shape (m, d)
    reference : array_like of shape (n, d)

    Returns
    -------
    MarginalError(mean, max)
    """
    s = _samples(samples, "samples")
    r = _samples(reference, "reference", s.shape[1], "samples")
    diff = np.abs(s.mean(axis=0) - r.mean(axis=0))
    return MarginalError(float(diff.mean()), float(diff.max()))


def nearest_neighbour(
    queries: Any, points: Any, *, chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``points`` of each query's nearest point (squared Euclidean
    distance; Hamming for {0, 1} vectors; ties go to the lowest index) and that
    squared distance."""
    q = _samples(queries, "queries")
    p = _samples(points, "points", q.shape[1], "queries")
    c = _chunk(chunk, p.shape[0])
    q2, p2 = np.einsum("ij,ij->i", q, q), np.einsum("ij,ij->i", p, p)
    idx = np.empty(q.shape[0], dtype=np.int64)
    dist = np.empty(q.shape[0])
    for s in range(0, q.shape[0], c):
        blk = _sq_block(q[s : s + c], p, q2[s : s + c], p2)
        idx[s : s + c] = blk.argmin(axis=1)
        dist[s : s + c] = blk[np.arange(blk.shape[0]), idx[s : s + c]]
    return idx, dist


def class_entropy(samples: Any, labelled_x: Any, labels: Any, *, chunk: int | None = None) -> ClassHistogram:
    """Label each sample by its nearest neighbour in ``labelled_x`` (squared
    Euclidean distance, i.e. Hamming for {0, 1} vectors; ties to the first) and
    return the entropy, in nats, of the histogram of those labels.

    The maximum is ``log(n_classes)`` (log 10 = 2.303 nats for digits), reached
    when every class gets the same share: a measure of mode coverage. A model
    that collapses onto one class scores 0.

    Parameters
    ----------
    samples : array_like of shape (m, d)
    labelled_x : array_like of shape (n, d)
    labels : array_like of shape (n,), integers (or any sortable labels)

    Returns
    -------
    ClassHistogram(entropy, counts, classes)
        ``classes`` are the distinct values of ``labels`` (sorted) and
        ``counts`` (int64) the number of samples given each, zeros included.
    """
    s = _samples(samples, "samples")
    lx = _samples(labelled_x, "labelled_x", s.shape[1], "samples")
    if labels is None or isinstance(labels, (str, bytes)):
        raise TypeError(f"'labels': expected a 1-D array of labels, got {type(labels).__name__}")
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != lx.shape[0]:
        raise ValueError(f"'labels': expected shape ({lx.shape[0]},) like 'labelled_x' rows, got {lab.shape}")
    if lab.dtype.kind == "f" and not np.isfinite(lab).all():
        raise ValueError("'labels': contains NaN or infinity")
    classes, inverse = np.unique(lab, return_inverse=True)
    idx, _ = nearest_neighbour(s, lx, chunk=chunk)
    counts = np.bincount(inverse.reshape(-1)[idx], minlength=classes.shape[0]).astype(np.int64)
    p = counts[counts > 0] / counts.sum()
    return ClassHistogram(float(-(p * np.log(p)).sum()), counts, classes)


def _subset(n_total: int, n: int, seed: int) -> np.ndarray:
    perm = np.argsort(hr.uniform(n_total, seed, dtype="float64"), kind="stable")
    return np.sort(perm[:n])


def _metrics(
    s: np.ndarray, test: np.ndarray, train: np.ndarray, train_labels: np.ndarray, bw: float, chunk: int | None
) -> dict[str, Any]:
    m = mmd(s, test, bandwidth=bw, return_stderr=True, chunk=chunk)
    e = energy_distance(s, test, return_stderr=True, chunk=chunk)
    me = marginal_error(s, test)
    ce = class_entropy(s, train, train_labels, chunk=chunk)
    return {
        "n": int(s.shape[0]),
        "mmd": m.value,
        "mmd_stderr": m.stderr,
        "energy": e.value,
        "energy_stderr": e.stderr,
        "marginal_mean": me.mean,
        "marginal_max": me.max,
        "class_entropy": ce.entropy,
        "class_counts": ce.counts,
    }


def sample_quality(
    samples: Any,
    train: Any,
    test: Any,
    train_labels: Any,
    *,
    bandwidth: float | None = None,
    seed: int = 0,
    chunk: int | None = None,
) -> dict[str, Any]:
    """Every metric of this module for ``samples`` against the held-out
    ``test`` set, and the same for a training subset of the same size: the
    floor a model cannot be expected to beat (the train-vs-test distance).

    Parameters
    ----------
    samples : array_like of shape (m, d)
        Generated samples, m >= 3.
    train : array_like of shape (n_train, d)
        Training data: the labelled set of the nearest-neighbour labelling,
        and the source of the floor's subset.
    test : array_like of shape (n_test, d)
        Held-out data, n_test >= 3.
    train_labels : array_like of shape (n_train,)
    bandwidth : float, optional
        MMD kernel width; default :func:`median_heuristic` of ``test`` alone,
        so that every model compared against one test set shares one kernel.
    seed : int
        Philox key of the floor's training subset.
    chunk : int, optional
        Rows per block of pairwise distances.

    Returns
    -------
    dict
        ``n``, ``mmd``, ``mmd_stderr``, ``energy``, ``energy_stderr``,
        ``marginal_mean``, ``marginal_max``, ``class_entropy`` (nats),
        ``class_counts``, ``classes``, ``bandwidth``, and ``floor``: a dict of
        the same metrics for ``min(m, n_train)`` training images (Philox
        subset of key ``seed``) against ``test``. In the floor, each training
        image is its own nearest neighbour, so its class entropy is that of
        its true labels.
    """
    s = _samples(samples, "samples", min_rows=3)
    tr = _samples(train, "train", s.shape[1], "samples", min_rows=3)
    te = _samples(test, "test", s.shape[1], "samples", min_rows=3)
    if train_labels is None or isinstance(train_labels, (str, bytes)):
        raise TypeError(f"'train_labels': expected a 1-D array, got {type(train_labels).__name__}")
    lab = np.asarray(train_labels)
    if lab.ndim != 1 or lab.shape[0] != tr.shape[0]:
        raise ValueError(
            f"'train_labels': expected shape ({tr.shape[0]},) like 'train' rows, got {lab.shape}"
        )
    bw = median_heuristic(te) if bandwidth is None else _positive_float(bandwidth, "bandwidth")
    out = _metrics(s, te, tr, lab, bw, chunk)
    sub = tr[_subset(tr.shape[0], min(s.shape[0], tr.shape[0]), seed)]
    out["floor"] = _metrics(sub, te, tr, lab, bw, chunk)
    out["classes"] = np.unique(lab)
    out["bandwidth"] = bw
    return out


def format_quality(rows: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of :func:`sample_quality` results, one row per name
    (``{"RBM": q_rbm, ...}``); a result's ``floor`` is printed as its own row
    ``train vs test`` (the first one found)."""
    head = (
        f"{'model':<22}{'n':>6}{'MMD^2 (+- se)':>24}{'energy (+- se)':>24}{'marg mean':>11}"
        f"{'marg max':>10}{'H(class) nats':>15}"
    )
    lines = [head, "-" * len(head)]
    table = dict(rows)
    floor = next((r["floor"] for r in rows.values() if "floor" in r), None)
    if floor is not None:
        table = {"train vs test (floor)": floor, **table}
    for name, r in table.items():
        lines.append(
            f"{name:<22}{r['n']:>6}{r['mmd']:>14.5f} +- {r['mmd_stderr']:<7.5f}"
            f"{r['energy']:>14.4f} +- {r['energy_stderr']:<7.4f}{r['marginal_mean']:>11.4f}"
            f"{r['marginal_max']:>10.4f}{r['class_entropy']:>15.4f}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------

#: Settings of :func:`baseline_samples` (override any by keyword).
BASELINES: dict[str, dict[str, Any]] = {
    # PCD-3 as in `heatbath train rbm-digits`, with a smaller learning rate and more epochs (on the
    # digits: MMD^2 0.0008 +- 0.0007 vs 0.08 with the command's lr 0.03 x 20 epochs, whose chains
    # fall into a few modes); then independent chains of `sweeps` Gibbs sweeps from the visible
    # biases' base rates
    "rbm": {
        "n_components": 100,
        "n_iter": 100,
        "k": 3,
        "learning_rate": 0.002,
        "batch_size": 20,
        "momentum": 0.5,
        "weight_decay": 1e-4,
        "sweeps": 1000,
    },
    # binomial diffusion (the 2015 paper's schedule beta_t = 1 / (T - t + 1)), MLP of 128 x 128
    "binomial": {"T": 100, "hidden": 128, "steps": 4000, "batch_size": 256, "lr": 2e-3, "lr_final": 5e-5},
}


def baseline_samples(
    name: str, train: Any, n: int, seed: int = 0, *, progress: bool = False, **params: Any
) -> np.ndarray:
    """Train a heatbath baseline on binary data and return ``n`` of its samples.

    Parameters
    ----------
    name : {"rbm", "binomial"}
        ``"rbm"``: :class:`heatbath.ebm.BernoulliRBM` trained by PCD, sampled
        by ``sweeps`` Gibbs sweeps per independent chain.
        ``"binomial"``: :class:`heatbath.diffusion.binomial.BinomialDPM`,
        sampled ancestrally over its T steps.
    train : array_like of shape (n_train, d), values 0/1
    n : int
        Number of samples.
    seed : int
        Seeds initialization, training and sampling.
    progress : bool
        Progress bar during the binomial model's training.
    **params
        Overrides of :data:`BASELINES` ``[name]``.

    Returns
    -------
    numpy.ndarray of shape (n, d), uint8 in {0, 1}
    """
    if name not in BASELINES:
        raise ValueError(f"'name': expected one of {sorted(BASELINES)}, got {name!r}")
    x = _samples(train, "train", min_rows=2)
    if not ((x == 0) | (x == 1)).all():
        raise ValueError("'train': the baselines model binary data (only 0 and 1 values)")
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"'n': expected an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"'n': must be >= 1, got {n}")
    allowed = set(BASELINES[name])
    if name == "rbm":
        from .ebm import BernoulliRBM

        allowed |= set(BernoulliRBM().get_params()) - {"random_state", "verbose"}
    else:
        allowed.add("n_basis")
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"'params': {sorted(unknown)} are not settings of the {name!r} baseline "
            f"(those are {sorted(allowed)})"
        )
    cfg = {**BASELINES[name], **params}
    if name == "rbm":
        sweeps = cfg.pop("sweeps")
        rbm = BernoulliRBM(random_state=seed, **cfg).fit(x.astype(np.float32))
        out = rbm.sample(int(n), k=int(sweeps))
    else:
        from .diffusion.binomial import BinomialDPM

        model = BinomialDPM(
            x.shape[1], T=cfg["T"], hidden=cfg["hidden"], n_basis=cfg.get("n_basis", 10), seed=seed
        )
        model.fit(
            x,
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            lr_final=cfg["lr_final"],
            progress=progress,
        )
        out = model.sample(int(n), seed=seed + 1)
    return np.asarray(out).astype(np.uint8)
