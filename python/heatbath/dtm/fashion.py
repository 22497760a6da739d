"""The Fashion-MNIST experiment of the DTM paper (Jelincic et al. 2025), in
its public replication's setup, with metrics that need no network download.

Setup: Fashion-MNIST binarized at 0.1 (pixel / 255 > 0.1); a 70 x 70 torus of
degree 12 (:func:`~heatbath.dtm.labelled.labelled_torus_graph`) holding the
784 pixels and 100 label nodes (one-hot x 10 spots) among 4,016 latents;
8 reverse steps; pixels noised at rate 0.9 and labels at 0.2; class-
conditional models (:class:`~heatbath.dtm.labelled.LabelledDTM`) against the
monolithic baseline on the same graph
(:class:`~heatbath.dtm.labelled.LabelledMEBM`), each with and without the
adaptive correlation penalty (ACP), all sampled with the same number of Gibbs
sweeps per sample (T x K for the DTM, K_total = T x K for the MEBM; inverse
temperature annealed 0.8 -> 1.2 over each step's sweeps, as the
replication's generation does), freely and with the label clamped.

Metrics, each beside its floor (as many training images as samples, against
the same test images):

* MMD^2 (Gaussian kernel, bandwidth from the test images) and energy distance
  of the samples to held-out test images (:mod:`heatbath.evaluation`);
* the class accuracy of the label-clamped samples, judged by an MLP
  classifier (:class:`heatbath.classifier.MLPClassifier`) trained on the
  training images, whose own test accuracy is reported; for free samples,
  how often it agrees with the label the model sampled;
* the Frechet distance in that classifier's features
  (:func:`heatbath.classifier.frechet_distance`). It is *not* the Inception
  FID of the paper and the replication (FID 37.1 MEBM, 29.7 DTM, 26.8 DTM with
  ACP, on 5,120 free samples): Inception's weights are not installable here.
  The samples are saved as ``.npz`` (``images`` uint8 (n, 28, 28) of 0/1,
  ``labels``) so that anyone with them can compute FID.

Differences from the replication, beyond the metrics: training is heatbath's
(per-step contrastive divergence with short negative chains and Adam, see
:class:`~heatbath.dtm.DTM`), not the replication's long-chain sampler; the
forward time grid is heatbath's (``t_end`` 3, log spacing).

Two budgets (:data:`PRESETS`): ``reduced`` (a subset of the training images,
a few epochs; about 10 minutes on 2 free CPU cores, 19 minutes of CPU time) and ``full`` (all
60,000 training images, 512 samples per class per mode as in the replication,
800 sweeps per step; for a GPU, with a training time limit per model).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

__all__ = ["FashionConfig", "PRESETS", "MODELS", "run_experiment", "format_results"]

#: model name -> (class name, ACP on)
MODELS = {
    "dtm_acp": ("LabelledDTM", True),
    "dtm": ("LabelledDTM", False),
    "mebm_acp": ("LabelledMEBM", True),
    "mebm": ("LabelledMEBM", False),
}


@dataclasses.dataclass
class FashionConfig:
    """One run's settings (see :data:`PRESETS`)."""

    side: int = 70
    T: int = 8
    K: int = 50
    beta: Optional[tuple] = (0.8, 1.2)
    rate: float = 0.9
    label_rate: float = 0.2
    label_spots: int = 10
    t_end: float = 3.0
    threshold: float = 0.1
    n_train: Optional[int] = 20000
    n_test: Optional[int] = 2000
    epochs: int = 3
    chunk: int = 10000
    train_seconds: Optional[float] = None
    batch_size: int = 100
    learning_rate: float = 0.02
    warmup: int = 10
    records: int = 24
    per_class: int = 100
    models: tuple = ("dtm_acp", "dtm", "mebm_acp", "mebm")
    classifier_epochs: int = 6
    classifier_hidden: tuple = (256, 128)
    classifier_train: Optional[int] = None
    seed: int = 0
    device: str = "cpu"

    def describe(self) -> str:
        n_tr = "all" if self.n_train is None else f"{self.n_train:,}"
        limit = f", at most {self.train_seconds:g} s of training per model" if self.train_seconds else ""
        return (
            f"{self.side}x{self.side} torus, T = {self.T}, K = {self.K} ({self.T * self.K} sweeps per sample, "
            f"beta {self.beta}), {n_tr} training images, {self.epochs} epochs{limit}, batch {self.batch_size}, "
            f"{self.per_class} samples per class per mode, scored against "
            f"{'all' if self.n_test is None else f'{self.n_test:,}'} test images, classifier "
            f"{self.classifier_epochs} epochs, "
            f"device {self.device}"
        )


PRESETS: Dict[str, FashionConfig] = {
    # 2 CPU cores, under 20 minutes (19 minutes of CPU time measured): the full graph, a third of the
    # training images, 800 sweeps per sample, 1,000 samples per mode
    "reduced": FashionConfig(n_train=20000, n_test=2000, epochs=4, K=100, per_class=100),
    # a GPU: all training images, the replication's evaluation size (512 per class) and generation sweeps
    "full": FashionConfig(
        n_train=None,
        n_test=None,
        epochs=20,
        K=800,
        per_class=512,
        batch_size=250,
        train_seconds=60.0,
        classifier_epochs=8,
    ),
}


def _xp(device: str):
    if device == "cuda":
        from .._backend import cupy_module

        return cupy_module()
    return np


def _train(model, X: np.ndarray, y: np.ndarray, cfg: FashionConfig, log: Callable[[str], None]) -> dict:
    """Train in passes over chunks of the training set (each chunk one call of
    ``fit``, which continues training) until ``cfg.epochs`` epochs or
    ``cfg.train_seconds`` are spent. Returns what was done."""
    n = X.shape[0]
    chunk = max(1, min(cfg.chunk, n))
    t0, c0 = time.perf_counter(), time.process_time()
    seen = 0
    stopped = False
    for epoch in range(cfg.epochs):
        for a in range(0, n, chunk):
            model.fit(X[a : a + chunk], y[a : a + chunk])
            seen += min(chunk, n - a)
            if cfg.train_seconds is not None and time.perf_counter() - t0 > cfg.train_seconds:
                stopped = True
                break
        log(f"  epoch {epoch + 1}: {seen:,} images seen, {time.perf_counter() - t0:.1f} s")
        if stopped:
            break
    return {
        "fit_seconds": time.perf_counter() - t0,
        "fit_cpu_seconds": time.process_time() - c0,
        "images_seen": seen,
        "epochs": seen / n,
        "stopped_by_time_limit": stopped,
    }


def _metrics(
    images: np.ndarray, Xte: np.ndarray, bw: float, clf, f_test: np.ndarray, labels: Optional[np.ndarray]
) -> dict:
    from .. import evaluation as ev
    from ..classifier import frechet_distance

    m = ev.mmd(images, Xte, bandwidth=bw, return_stderr=True)
    e = ev.energy_distance(images, Xte, return_stderr=True)
    out = {
        "mmd2": m.value,
        "mmd2_se": m.stderr,
        "energy": e.value,
        "energy_se": e.stderr,
        "frechet_clf": frechet_distance(clf.features(images), f_test),
    }
    if labels is not None:
        out["accuracy"] = float((clf.predict(images) == labels).mean())
    return out


def run_experiment(
    cfg: FashionConfig,
    data_path: Optional[str] = None,
    out: Optional[str] = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train the models of ``cfg.models``, sample them free and label-clamped,
    and score the samples (see the module's docstring). Writes
    ``samples_<model>_<mode>.npz``, ``results.json`` and the models'
    checkpoints under ``out`` when given. Returns the results dict."""
    from .. import evaluation as ev
    from ..classifier import MLPClassifier
    from ..data.fashion import fashion_mnist
    from .labelled import LabelledDTM, LabelledMEBM, labelled_torus_graph

    unknown = [m for m in cfg.models if m not in MODELS]
    if unknown:
        raise ValueError(f"'models': unknown {unknown}; choose from {', '.join(MODELS)}")
    if cfg.device not in ("cpu", "cuda"):
        raise ValueError(f"'device': expected 'cpu' or 'cuda', got {cfg.device!r}")
    t_start, c_start = time.perf_counter(), time.process_time()
    need = None if cfg.n_train is None or cfg.classifier_train is None else max(cfg.n_train, cfg.classifier_train)
    d = fashion_mnist(data_path, cfg.threshold, limit=need)
    Xtr, ytr = d.X_train[: cfg.n_train], d.y_train[: cfg.n_train]
    Xte, yte = d.X_test[: cfg.n_test], d.y_test[: cfg.n_test]
    n_classes = int(max(ytr.max(), yte.max())) + 1
    side_px = math.isqrt(Xtr.shape[1])
    shape = (side_px, side_px) if side_px * side_px == Xtr.shape[1] else (1, Xtr.shape[1])
    graph = labelled_torus_graph(cfg.side, shape, n_classes, cfg.label_spots, seed=cfg.seed)
    log(
        f"Fashion-MNIST binarized at {cfg.threshold}: {Xtr.shape[0]:,} training, {Xte.shape[0]:,} test images; "
        f"graph {graph.n_nodes:,} nodes ({Xtr.shape[1]} pixels + {n_classes * cfg.label_spots} label nodes "
        f"visible), {graph.n_edges:,} edges"
    )
    log(f"settings: {cfg.describe()}")
    if out:
        os.makedirs(out, exist_ok=True)

    t0 = time.perf_counter()
    Xc, yc = d.X_train[: cfg.classifier_train], d.y_train[: cfg.classifier_train]
    clf = MLPClassifier(
        hidden=cfg.classifier_hidden, epochs=cfg.classifier_epochs, seed=cfg.seed, xp=_xp(cfg.device)
    ).fit(Xc, yc)
    clf_acc = clf.score(d.X_test, d.y_test)
    log(
        f"classifier (MLP {cfg.classifier_hidden}, trained on {Xc.shape[0]:,} training images): "
        f"accuracy on the {d.X_test.shape[0]:,} test images {clf_acc:.4f} ({time.perf_counter() - t0:.1f} s)"
    )

    n = n_classes * cfg.per_class
    labels = np.repeat(np.arange(n_classes), cfg.per_class)
    bw = ev.median_heuristic(Xte)
    f_test = clf.features(Xte)
    rng = np.random.default_rng(cfg.seed)
    floor_idx = rng.choice(Xtr.shape[0], size=min(n, Xtr.shape[0]), replace=False)
    floor = _metrics(Xtr[floor_idx], Xte, bw, clf, f_test, ytr[floor_idx])
    floor["accuracy"] = clf_acc
    results: dict = {
        "config": dataclasses.asdict(cfg),
        "n_train": int(Xtr.shape[0]),
        "n_test": int(Xte.shape[0]),
        "classifier_test_accuracy": clf_acc,
        "bandwidth": bw,
        "floor": floor,
        "models": {},
    }
    log(
        f"floor ({len(floor_idx)} training images vs test): MMD^2 {floor['mmd2']:.5f}, energy "
        f"{floor['energy']:.4f}, Frechet (classifier features) {floor['frechet_clf']:.3f}"
    )

    common = dict(
        graph=graph,
        learning_rate=cfg.learning_rate,
        batch_size=cfg.batch_size,
        n_epochs=1,
        warmup=cfg.warmup,
        n_records=cfg.records,
        acp_lag=min(8, cfg.records - 1),
        beta=cfg.beta,
        seed=cfg.seed,
        device=cfg.device,
        progress=progress,
        n_classes=n_classes,
        label_spots=cfg.label_spots,
    )
    sweeps = cfg.T * cfg.K
    for name in cfg.models:
        kind, acp = MODELS[name]
        if kind == "LabelledDTM":
            model = LabelledDTM(
                T=cfg.T, K=cfg.K, rate=cfg.rate, label_rate=cfg.label_rate, t_end=cfg.t_end, acp=acp, **common
            )
        else:
            model = LabelledMEBM(K_total=sweeps, acp=acp, **common)
        log(f"{name}: training")
        info = _train(model, Xtr, ytr, cfg, log)
        if out:
            model.save(os.path.join(out, f"{name}.npz"))
        entry: dict = {"training": info, "cp": [s.cp for s in model.steps_]}
        for mode in ("free", "clamped"):
            t0, c0 = time.perf_counter(), time.process_time()
            rows = model.sample(n, seed=cfg.seed + 1, labels=None if mode == "free" else labels)
            samp_s, samp_c = time.perf_counter() - t0, time.process_time() - c0
            images, own = model.split(rows)
            lab = labels if mode == "clamped" else own
            met = _metrics(images, Xte, bw, clf, f_test, lab)
            if mode == "free":
                met["label_agreement"] = met.pop("accuracy")
            met["sample_seconds"] = samp_s
            met["sample_cpu_seconds"] = samp_c
            met["sweeps_per_sample"] = sweeps
            entry[mode] = met
            if out:
                np.savez_compressed(
                    os.path.join(out, f"samples_{name}_{mode}.npz"),
                    images=images.reshape((-1,) + shape).astype(np.uint8),
                    labels=lab,
                    mode=mode,
                    model=name,
                    threshold=cfg.threshold,
                )
            acc = met.get("accuracy", met.get("label_agreement"))
            log(
                f"  {mode}: MMD^2 {met['mmd2']:.5f} +- {met['mmd2_se']:.5f}, energy {met['energy']:.4f} +- "
                f"{met['energy_se']:.4f}, Frechet (classifier features) {met['frechet_clf']:.3f}, "
                f"{'accuracy' if mode == 'clamped' else 'label agreement'} {acc:.3f}; {n} samples in {samp_s:.1f} s"
            )
        results["models"][name] = entry
    results["total_seconds"] = time.perf_counter() - t_start
    results["total_cpu_seconds"] = time.process_time() - c_start
    if out:
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=float)
    return results


def format_results(results: dict) -> str:
    """The results as a table (one row per model and mode)."""
    fl = results["floor"]
    lines = [
        f"{'model':<10}{'mode':<9}{'MMD^2':>10}{'+- se':>9}{'energy':>9}{'+- se':>8}"
        f"{'Frechet(clf)':>13}{'acc.':>7}{'fit s':>8}{'images':>9}",
        f"{'floor':<10}{'':<9}{fl['mmd2']:>10.5f}{fl['mmd2_se']:>9.5f}{fl['energy']:>9.4f}"
        f"{fl['energy_se']:>8.4f}{fl['frechet_clf']:>13.3f}{fl['accuracy']:>7.3f}",
    ]
    for name, e in results["models"].items():
        for mode in ("free", "clamped"):
            m = e[mode]
            acc = m.get("accuracy", m.get("label_agreement", math.nan))
            lines.append(
                f"{name:<10}{mode:<9}{m['mmd2']:>10.5f}{m['mmd2_se']:>9.5f}{m['energy']:>9.4f}"
                f"{m['energy_se']:>8.4f}{m['frechet_clf']:>13.3f}{acc:>7.3f}"
                f"{e['training']['fit_seconds']:>8.0f}{e['training']['images_seen']:>9,}"
            )
    lines.append(
        "floor: as many training images against the same test images; its accuracy is the "
        "classifier's test accuracy. acc.: clamped, classifier accuracy on the clamped class; free, "
        "agreement with the label the model sampled. Frechet(clf): in the classifier's features, not FID."
    )
    return "\n".join(lines)
