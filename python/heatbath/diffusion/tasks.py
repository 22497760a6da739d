"""The 2015 paper's experiments as runs: data set, model, training,
evaluation of the bound beside its ceiling (and the published value where it
is comparable), sampling, inpainting and plots.
Used by ``heatbath train swissroll|heartbeat|digits`` and ``heatbath
sample|evaluate|inpaint DIR``.

A run folder holds ``model.npz`` (the checkpoint) and ``run.json`` (data
set, training time, bound).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from .. import checkpoint
from ..data import toy
from .binomial import BinomialDPM
from .dpm import HALF_LOG_2PIE, LOG2, GaussianDPM


@dataclass(frozen=True)
class Dataset:
    name: str
    binary: bool
    paper_bits: Optional[float]  # the paper's K on held-out data (Table 1)
    paper_note: str
    load: Callable[..., Tuple[np.ndarray, np.ndarray]]  # (seed, **options) -> (train, test)
    #: whether the paper's K is a like-for-like number for this data, and why (not)
    paper_comparable: bool = False
    paper_why: str = ""


#: the Swiss roll's noise (raw units) when none is given: a roll of finite entropy
SWISSROLL_NOISE = 0.1


def _swissroll(seed: int, noise: float = SWISSROLL_NOISE):
    s = toy.load("swissroll", 20000, seed=seed, noise=noise)
    return s.train, s.test


def _heartbeat(seed: int, **_: Any):
    s = toy.load("heartbeat", 20000, seed=seed)
    return s.train.astype(np.float64), s.test.astype(np.float64)


def digits_rescaled() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (shipped with scikit-learn), pixels scaled
    to zero mean and unit variance overall, with the fixed split of
    ``heatbath.data.digits``."""
    from ..data import digits as dmod
    from ..data.digits import N_TEST, binarized_digits  # noqa: F401  (same split)

    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits data ship with scikit-learn: `pip install scikit-learn`") from exc
    from .. import random as hr

    X = load_digits().data.astype(np.float64)
    perm = np.argsort(hr.uniform(X.shape[0], dmod._SPLIT_SEED, dtype="float64"), kind="stable")
    X = (X - X.mean()) / X.std()
    return X[perm[dmod.N_TEST:]], X[perm[: dmod.N_TEST]]


DATASETS: Dict[str, Dataset] = {
    "swissroll": Dataset(
        "swissroll", False, 2.35, "Swiss roll, T = 40", _swissroll, False,
        "the paper's roll has unstated thickness and beta_1, and K on a roll depends on both "
        "(its ceiling -H(X^1) grows without limit as the roll thins or beta_1 -> 0)"),
    "heartbeat": Dataset(
        "heartbeat", True, -2.414, "binary heartbeat, T = 2000", _heartbeat, True,
        "the same data, whose entropy log2(5) bits is known"),
    "digits": Dataset("digits", False, None, "8x8 digits, rescaled", lambda seed, **_: digits_rescaled(),
                      False, "the paper reports no K on these data"),
}


def data_options(name: str, info: Dict[str, Any]) -> Dict[str, Any]:
    """The data options a run was trained with, from its run.json (runs
    written before the Swiss roll had a noise option used the noiseless roll)."""
    if name == "swissroll":
        return {"noise": float(info.get("noise", 0.0))}
    return {}


def data_distribution(name: str, info: Dict[str, Any]):
    """The distribution a run's held-out data come from, for the ceiling of K
    (:mod:`heatbath.diffusion.ceiling`); None when it is not known."""
    from . import ceiling

    if name == "swissroll":
        return ceiling.swiss_roll_data(data_options(name, info)["noise"])
    if name == "heartbeat":
        return ceiling.DiscreteData(math.log2(5))
    return None


def dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"'data': unknown data set {name!r}; choose one of {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def build_model(name: str, T: Optional[int], seed: int, xp=np, **kw: Any):
    if name == "swissroll":
        mode = kw.get("mode", "paper")
        # the paper's setting: RBF network, beta_2..T learned on K, a small fixed beta_1
        return GaussianDPM(2, T or 40, net=kw.get("net", "rbf"), mode=mode, step1_beta=kw.get("step1_beta", 1e-6),
                           learn_schedule=mode == "paper", seed=seed, xp=xp)
    if name == "heartbeat":
        return BinomialDPM(20, T or 2000, hidden=kw.get("hidden", 128), seed=seed, xp=xp)
    if name == "digits":
        return GaussianDPM(64, T or 100, net="mlp", mode=kw.get("mode", "epsilon"), hidden=kw.get("hidden", 256),
                           step1_beta=kw.get("step1_beta", 1e-3), seed=seed, xp=xp)
    raise ValueError(f"'data': unknown data set {name!r}")


def load_run(folder: "str | os.PathLike", xp=np):
    """(model, run info) from a run folder (or a checkpoint path)."""
    folder = os.fspath(folder)
    path = folder if folder.endswith(".npz") else os.path.join(folder, "model.npz")
    kind = checkpoint.read_kind(path)
    cls = {"GaussianDPM": GaussianDPM, "BinomialDPM": BinomialDPM}.get(kind)
    if cls is None:
        raise checkpoint.CheckpointError(f"'path': {path} holds a {kind!r} model, not a diffusion model")
    model = cls.load(path, xp=xp)
    info_path = os.path.join(os.path.dirname(path), "run.json")
    info: Dict[str, Any] = {}
    if os.path.isfile(info_path):
        try:
            with open(info_path) as f:
                info = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise checkpoint.CheckpointError(f"'path': {info_path} is corrupt ({exc})") from None
    if "data" not in info:
        info["data"] = {"GaussianDPM": "swissroll" if model.dim == 2 else "digits"}.get(kind, "heartbeat")
    return model, info


def write_info(folder: str, info: Dict[str, Any]) -> None:
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, ".run.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, os.path.join(folder, "run.json"))


def evaluate(model, test: np.ndarray, n: int, n_draws: int = 1, progress: bool = False, data: Any = None):
    """The bound on up to n held-out samples (with its ceiling when ``data``,
    the data's distribution, is given)."""
    return model.bound(test[:n], n_draws=n_draws, progress=progress, data=data)


def report(name: str, b, model=None) -> str:
    """K, its ceiling and the gap, and what the paper's number means beside
    them (several lines)."""
    ds = DATASETS.get(name)
    lines = [f"K = {b.bits:.3f} +- {b.stderr:.3f} bits per sample ({b.bits_per_dim:.4f} per dimension)"]
    if b.ceiling is not None:
        what = "-H(X^0), the data's entropy" if (ds is not None and ds.binary) else (
            f"-H(X^1) at beta_1 = {model.betas[0]:.3g}" if model is not None else "-H(X^1)")
        lines.append(f"ceiling (the best K any model can reach: {what}) = {b.ceiling:.3f} bits; "
                     f"gap {b.gap:.3f} +- {b.stderr:.3f} bits")
    elif model is not None and ds is not None and not ds.binary:
        # H(X^1) >= H(X^1 | X^0): a ceiling for any data, loose by the data's own entropy
        loose = -model.dim * (HALF_LOG_2PIE + 0.5 * math.log(model.betas[0])) / LOG2
        lines.append(f"ceiling unknown (the data's distribution is not known); it is at most "
                     f"-H(X^1|X^0) = {loose:.1f} bits")
    if ds is not None and ds.paper_bits is not None:
        if ds.paper_comparable:
            lines.append(f"paper: {ds.paper_bits} bits, comparable ({ds.paper_why}); "
                         f"difference {b.bits - ds.paper_bits:+.3f} bits")
        else:
            lines.append(f"paper: {ds.paper_bits} bits, not comparable: {ds.paper_why}")
    if ds is not None and not ds.binary:
        lines.append(f"K - L(isotropic Gaussian) = {b.gain_over_gaussian:.3f} bits")
    return "\n".join(lines)


# ---- plots ---------------------------------------------------------------------------

def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("plots need matplotlib: `pip install heatbath[plot]`") from exc
    return plt


def plot_swissroll_figure(model: GaussianDPM, data: np.ndarray, path: str, n: int = 2000, seed: int = 0) -> str:
    """The paper's Figure 1: the forward trajectory at t = 0, T/2, T (top) and
    the reverse trajectory at the same times (bottom) with the drift field
    mu(x_t, t) - x_t."""
    plt = _plt()
    from .. import random as hr

    T = model.T
    x0 = data[:n]
    times = [0, T // 2, T]
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.2))
    noise = hr.normal(x0.shape, seed, dtype="float64")
    for j, t in enumerate(times):
        xt = x0 if t == 0 else model.q_sample(x0, np.full(len(x0), t), noise)
        axes[0, j].scatter(xt[:, 0], xt[:, 1], s=1, alpha=0.5)
        axes[0, j].set_title(f"forward q(x) at t = {t}")
    traj = model.sample(n, seed=seed + 1, return_trajectory=True)  # x_T .. x_1
    for j, t in enumerate(times):
        xt = traj[T - max(t, 1)]
        ax = axes[1, j]
        ax.scatter(xt[:, 0], xt[:, 1], s=1, alpha=0.5, color="C1")
        ax.set_title(f"reverse p(x) at t = {max(t, 1)}")
        g = np.linspace(-2.2, 2.2, 17)
        gx, gy = np.meshgrid(g, g)
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        tt = np.full(len(pts), max(t, 2))
        mu, _ = model.reverse_kernel(pts, tt)
        drift = mu - pts
        ax.quiver(pts[:, 0], pts[:, 1], drift[:, 0], drift[:, 1], color="k", alpha=0.6, angles="xy")
    for ax in axes.ravel():
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
        ax.set_aspect("equal")
        ax.set_xlabel("x (unit variance)")
        ax.set_ylabel("y")
    fig.suptitle("Swiss roll: forward diffusion (top), learned reverse diffusion and its drift (bottom)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_samples(name: str, samples: np.ndarray, path: str, title: Optional[str] = None,
                 reference: Optional[np.ndarray] = None) -> str:
    """A scatter (Swiss roll, over the held-out ``reference`` points when
    given), a raster of sequences (heartbeat) or a grid of images (digits),
    titled ``title`` (default: what and how many)."""
    plt = _plt()
    n = len(samples)
    if name == "swissroll":
        fig, ax = plt.subplots(figsize=(5.5, 5.5))
        if reference is not None:
            ax.scatter(reference[:, 0], reference[:, 1], s=1, alpha=0.3, color="0.6", label="held-out data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.6, color="C1", label="samples")
        ax.set_aspect("equal")
        ax.set_xlabel("x (unit variance)")
        ax.set_ylabel("y")
        ax.legend(loc="upper right", markerscale=4)
        ax.set_title(title or f"Swiss roll: {n} samples")
    elif name == "heartbeat":
        k = min(n, 40)
        fig, ax = plt.subplots(figsize=(6, 0.18 * k + 1.2))
        ax.imshow(samples[:k], cmap="gray_r", aspect="auto", interpolation="nearest")
        ax.set_xlabel("bin")
        ax.set_ylabel("sample")
        ax.set_title(title or f"binary heartbeat: {k} of {n} samples")
    else:
        k = int(math.sqrt(min(n, 100)))
        side = int(round(math.sqrt(samples.shape[1])))
        fig, axes = plt.subplots(k, k, figsize=(k, k + 0.5), squeeze=False)
        for i, ax in enumerate(np.ravel(axes)):
            ax.imshow(samples[i].reshape(side, side), cmap="gray_r")
            ax.axis("off")
        fig.suptitle(title or f"{name}: {k * k} of {n} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_inpainting(name: str, completed: np.ndarray, truth: np.ndarray, k: int, path: str) -> str:
    """Inpainting as the eye checks it: the first ``k`` coordinates were
    known (taken from the held-out ``truth``), the rest drawn by the model.
    Swiss roll: each completion beside its held-out point at the same known
    x; heartbeat and digits: truth and completion side by side, the known
    part marked."""
    plt = _plt()
    n, d = completed.shape
    if name == "swissroll":
        fig, ax = plt.subplots(figsize=(6, 5.5))
        ax.scatter(truth[:, 0], truth[:, 1], s=6, color="0.5", label="held-out truth")
        ax.scatter(completed[:, 0], completed[:, 1], s=6, color="C1", label="inpainted y at the known x")
        for a, b in zip(truth, completed):
            ax.plot([a[0], b[0]], [a[1], b[1]], color="C1", alpha=0.25, lw=0.6)
        ax.set_xlabel("x (known)")
        ax.set_ylabel("y (inpainted)")
        ax.set_aspect("equal")
        ax.legend(loc="upper right")
        ax.set_title(f"Swiss roll inpainting: y drawn given x, {n} held-out points")
    elif name == "heartbeat":
        m = min(n, 20)
        rows = np.empty((2 * m, d))
        rows[0::2], rows[1::2] = truth[:m], completed[:m]
        fig, ax = plt.subplots(figsize=(7, 0.3 * m + 1.4))
        ax.imshow(rows, cmap="gray_r", aspect="auto", interpolation="nearest")
        ax.axvline(k - 0.5, color="C3", lw=1.5)
        ax.set_yticks(np.arange(0, 2 * m, 2) + 0.5)
        ax.set_yticklabels([f"{i}: truth / inpainted" for i in range(m)], fontsize=6)
        ax.set_xlabel(f"bin (bins 0..{k - 1}, left of the red line, known)")
        ax.set_title(f"heartbeat inpainting: {m} of {n} held-out sequences")
    else:
        side = int(round(math.sqrt(d)))
        m = min(n, 8)
        fig, axes = plt.subplots(2, m, figsize=(1.2 * m, 3.0), squeeze=False)
        known_rows = k / side  # the first k pixels: the top rows of the image
        for i in range(m):
            for r, (img, label) in enumerate(((truth[i], "truth"), (completed[i], "inpainted"))):
                ax = axes[r][i]
                ax.imshow(img.reshape(side, side), cmap="gray_r")
                ax.axhline(known_rows - 0.5, color="C3", lw=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_ylabel(label)
        fig.suptitle(f"{name} inpainting: the first {k} of {d} pixels known (above the red line)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
