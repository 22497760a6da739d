"""``heatbath train dtm-digits``: a denoising thermodynamic model on the
binarized 8x8 digits (or on MNIST-format IDX files with ``--data``), with the
per-step mixing diagnostics, a checkpoint in the run folder, a sample grid of
every step (``--plot``) and the sample-quality metrics of
:mod:`heatbath.evaluation`. The trainer is registered in
:data:`heatbath.commands.train.TRAINERS`; this module adds no top-level
command."""

from __future__ import annotations

import argparse
import json
import math
import os
import time

from .train import Trainer, _nonneg_float, _positive_int


def _beta_pair(text: str):
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected B or B0,B1, got {text!r}") from None
    if len(parts) not in (1, 2) or not all(math.isfinite(b) and b > 0 for b in parts):
        raise argparse.ArgumentTypeError(f"expected one or two positive numbers, got {text!r}")
    return (parts[0], parts[-1])


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="PATH",
                   help="MNIST-format IDX data instead of the digits: a folder with train-/t10k- files, "
                        "or an images file (binarized at 0.5, 10%% held out)")
    p.add_argument("--limit", type=_positive_int, default=None, help="use at most this many training images")
    p.add_argument("--T", type=_positive_int, default=6, help="reverse steps (default 6)")
    p.add_argument("--K", type=_positive_int, default=20,
                   help="Gibbs sweeps per step when sampling (default 20)")
    p.add_argument("--epochs", type=_positive_int, default=40,
                   help="passes over the training set (default 40)")
    p.add_argument("--side", type=_positive_int, default=None,
                   help="torus side (even; default about 1.5 sqrt(pixels), 12 for the digits)")
    p.add_argument("--graph", choices=["torus", "grid"], default="torus",
                   help="degree-12 torus of the paper or nearest-neighbour torus (default torus)")
    p.add_argument("--rate", type=_nonneg_float, default=1.0, help="forward flip rate lambda (default 1)")
    p.add_argument("--t-end", type=_nonneg_float, default=3.0, help="forward time of step T (default 3)")
    p.add_argument("--schedule", choices=["log", "linear"], default="log")
    p.add_argument("--learning-rate", type=_nonneg_float, default=0.02)
    p.add_argument("--batch-size", type=_positive_int, default=250)
    p.add_argument("--warmup", type=int, default=10,
                   help="negative-phase sweeps before recording (default 10)")
    p.add_argument("--records", type=_positive_int, default=24,
                   help="negative-phase sweeps recorded per update (default 24)")
    p.add_argument("--no-acp", action="store_true", help="no adaptive correlation penalty")
    p.add_argument("--acp-threshold", type=_nonneg_float, default=0.05)
    p.add_argument("--beta", type=_beta_pair, default=None, metavar="B0[,B1]",
                   help="sampling inverse temperature, annealed from B0 to B1 over each step's sweeps")
    p.add_argument("--samples", type=_positive_int, default=1000, help="samples to evaluate (default 1000)")
    p.add_argument("--mixing-sweeps", type=_positive_int, default=200,
                   help="sweeps recorded for the final mixing report (default 200)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join("runs", "dtm-digits"),
                   help="run folder (default runs/dtm-digits)")
    p.add_argument("--plot", metavar="FILE", help="write a grid of samples at every step (needs matplotlib)")
    p.add_argument("--verbose", action="store_true", help="print every step's mixing every epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load_data(args):
    """(X_train, X_test, y_train or None, image shape)."""
    import numpy as np

    if args.data is None:
        from ..data.digits import binarized_digits

        d = binarized_digits()
        what = "binarized 8x8 digits"
        return d.X_train.astype(np.uint8), d.X_test.astype(np.uint8), d.y_train, (8, 8), what
    from ..data import idx

    if os.path.isdir(args.data):
        tr = idx.load_idx_dir(args.data, "train")
        try:
            te = idx.load_idx_dir(args.data, "test")
        except (FileNotFoundError, ValueError):
            te = None
    else:
        tr, te = idx.load_idx_dataset(args.data), None
    X, y = tr.X, tr.y
    if te is None:
        n_test = max(3, X.shape[0] // 10)
        X, Xte, y = X[n_test:], X[:n_test], (y[n_test:] if y is not None else None)
    else:
        Xte = te.X
    if args.limit is not None:
        X, y = X[: args.limit], (y[: args.limit] if y is not None else None)
    side = math.isqrt(X.shape[1])
    shape = (side, side) if side * side == X.shape[1] else (1, X.shape[1])
    return X.astype(np.uint8), Xte.astype(np.uint8), y, shape, f"IDX data {args.data}"


def plot_steps(steps, image_shape, path: str, n_rows: int = 8) -> str:
    """A grid of images: one row per sample, one column per step (x^T ... x^0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows = min(n_rows, steps[0].shape[0])
    T1 = len(steps)
    fig, axes = plt.subplots(n_rows, T1, figsize=(1.1 * T1, 1.1 * n_rows), squeeze=False)
    for r in range(n_rows):
        for c, x in enumerate(steps):
            ax = axes[r][c]
            ax.imshow(x[r].reshape(image_shape), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"x^{T1 - 1 - c}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:

    from ..dtm import DTM, grid_graph, torus_graph

    X, Xte, y, shape, what = _load_data(args)
    n_vis = X.shape[1]
    side = args.side if args.side is not None else 2 * math.ceil(0.75 * math.sqrt(n_vis))
    build = torus_graph if args.graph == "torus" else grid_graph
    graph = build(side, n_vis, image_shape=shape if shape[0] > 1 else None)
    model = DTM(graph=graph, T=args.T, K=args.K, rate=args.rate, t_end=args.t_end, schedule=args.schedule,
                learning_rate=args.learning_rate, batch_size=args.batch_size, n_epochs=args.epochs,
                warmup=args.warmup, n_records=args.records, acp=not args.no_acp,
                acp_threshold=args.acp_threshold, acp_lag=min(8, args.records - 1), beta=args.beta,
                seed=args.seed, device=args.device, progress=not args.no_progress, verbose=args.verbose)
    print(f"heatbath train dtm-digits: {what}, {X.shape[0]} training and {Xte.shape[0]} held-out images; "
          f"{args.graph} {side}x{side} ({graph.n_nodes} nodes, {graph.n_edges} edges, {n_vis} visible), "
          f"T = {args.T}, K = {args.K} ({args.T * args.K} sweeps per sample), {args.epochs} epochs, "
          f"ACP {'off' if args.no_acp else 'on'}")
    t0 = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - t0
    print(f"trained in {fit_s:.1f} s")
    os.makedirs(args.out, exist_ok=True)
    path = model.save(os.path.join(args.out, "model.npz"))
    print(f"saved {path}")
    t0 = time.perf_counter()
    steps = model.sample(args.samples, seed=args.seed + 1, return_steps=True)
    samp_s = time.perf_counter() - t0
    samples = steps[-1]
    print(f"{args.samples} samples in {samp_s:.2f} s ({args.samples / samp_s:,.0f} samples/s, "
          f"{args.T * args.K} sweeps each)")
    reps = model.mixing(Xte, n_chains=min(256, Xte.shape[0] * 4), n_sweeps=args.mixing_sweeps,
                        seed=args.seed + 2)
    mix = []
    for t, r in enumerate(reps, 1):
        ds = r.decorrelation_sweeps
        print(f"step {t}: tau = {r.tau:.2f} sweeps, ESS {r.ess:,.0f} of {r.n_sweeps * r.n_chains}, "
              f"decorrelated (rho < 1/e) after {ds if ds is not None else '>' + str(r.n_sweeps - 1)} sweeps, "
              f"cp = {model.steps_[t - 1].cp:.3g}")
        mix.append({"step": t, **r.summary()})
    info = {"fit_seconds": fit_s, "sample_seconds": samp_s, "mixing": mix}
    try:
        from .. import evaluation
    except ImportError:
        evaluation = None
        print("sample quality: heatbath.evaluation is not available; skipped")
    if evaluation is not None:
        if y is not None:
            q = evaluation.sample_quality(samples, X, Xte, y, seed=args.seed)
            print(evaluation.format_quality({"DTM": q}))
            info["quality"] = {k: v for k, v in q.items() if isinstance(v, (int, float))}
        else:
            e = evaluation.mmd(samples, Xte, return_stderr=True)
            print(f"MMD^2 to held-out data: {e.value:.5f} +- {e.stderr:.5f}")
    if args.plot:
        try:
            print(f"wrote {plot_steps(steps, shape, args.plot)}")
        except ImportError:
            print("--plot needs matplotlib (`pip install matplotlib`); no plot written")
    with open(os.path.join(args.out, "info.json"), "w") as f:
        json.dump(info, f, indent=1, default=float)
    return 0


DTM_DIGITS = Trainer(
    help="denoising thermodynamic model (T sparse Boltzmann machines) on the binarized digits or IDX data; "
         "ends with per-step mixing and sample quality",
    configure=_configure,
    run=run,
)


def register(sub) -> None:
    """No top-level command: ``dtm-digits`` is a ``heatbath train`` trainer."""
