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
import sys
import time

from . import _args
from ._interrupt import EXIT_INTERRUPTED, StopOnInterrupt, resume_command
from .train import Trainer

_positive_int, _nonneg_float = _args.positive_int, _args.nonneg_float


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
    p.add_argument("--rate", type=_args.positive_float, default=1.0, help="forward flip rate lambda (default 1)")
    p.add_argument("--t-end", type=_args.positive_float, default=3.0,
                   help="forward time of step T (default 3)")
    p.add_argument("--schedule", choices=["log", "linear"], default="log",
                   help="spacing of the forward times of the steps (default log)")
    p.add_argument("--learning-rate", type=_args.positive_float, default=0.02,
                   help="Adam step size (default 0.02)")
    p.add_argument("--batch-size", type=_positive_int, default=250, help="images per update (default 250)")
    p.add_argument("--warmup", type=_args.nonneg_int, default=10,
                   help="negative-phase sweeps before recording (default 10)")
    p.add_argument("--records", type=_args.int_at_least(2), default=24,
                   help="negative-phase sweeps recorded per update (default 24)")
    p.add_argument("--no-acp", action="store_true", help="no adaptive correlation penalty")
    p.add_argument("--acp-threshold", type=_args.positive_float, default=0.05,
                   help="autocorrelation the penalty aims below (default 0.05)")
    p.add_argument("--beta", type=_beta_pair, default=None, metavar="B0[,B1]",
                   help="sampling inverse temperature, annealed from B0 to B1 over each step's sweeps")
    p.add_argument("--samples", type=_positive_int, default=1000, help="samples to evaluate (default 1000)")
    p.add_argument("--mixing-sweeps", type=_args.int_at_least(2), default=200,
                   help="sweeps recorded for the final mixing report (default 200)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the Gibbs sampling runs: cpu (default) or cuda (a GPU with cupy)")
    _args.add_seed(p, 0, "the initialization, the minibatches and the Gibbs sampling")
    p.add_argument("--out", type=_args.output_dir, default=os.path.join("runs", "dtm-digits"),
                   help="run folder for model.npz and info.json (default runs/dtm-digits)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted (Ctrl-C) run in --out from its last completed epoch")
    p.add_argument("--plot", metavar="FILE", type=_args.plot_file,
                   help="write a grid of samples at every step (needs matplotlib)")
    p.add_argument("--verbose", action="store_true", help="print every step's mixing every epoch")
    _args.add_progress(p)


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
    fig.suptitle(f"{n_rows} samples through the {T1 - 1} reverse steps (x^{T1 - 1}: noise, x^0: sample)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _resume_model(args, n_vis: int):
    from ..dtm import DTM

    path = os.path.join(args.out, "model.npz")
    if not os.path.isfile(path):
        raise ValueError(f"'--resume': no checkpoint {path} to resume from (give the --out of the run)")
    model = DTM.load(path, device=args.device)
    for opt, mine, theirs in (("--T", args.T, model.T), ("--K", args.K, model.K), ("--seed", args.seed, model.seed),
                              ("--batch-size", args.batch_size, model.batch_size)):
        if mine != theirs:
            raise ValueError(f"'{opt}': the run in {args.out} has {opt} {theirs}; resume with the same options")
    if model.graph_.n_visible != n_vis:
        raise ValueError(f"'--data': the run in {args.out} has {model.graph_.n_visible} visible nodes, the data "
                         f"{n_vis} features")
    if model.epochs_trained_ > args.epochs:
        raise ValueError(f"'--epochs': the run in {args.out} has already trained {model.epochs_trained_} epochs")
    model.n_epochs = args.epochs - model.epochs_trained_
    model.progress = not args.no_progress
    model.verbose = args.verbose
    return model


def _run_info(args, shape) -> dict:
    return {"data": os.path.abspath(args.data) if args.data else "digits", "limit": args.limit,
            "image_shape": list(shape), "seed": args.seed}


def run(args: argparse.Namespace) -> int:

    from ..dtm import DTM, grid_graph, torus_graph

    _args.check_device(args.device)
    X, Xte, y, shape, what = _load_data(args)
    n_vis = X.shape[1]
    if args.resume:
        model = _resume_model(args, n_vis)
        graph = model.graph_
        side = int(round(math.sqrt(graph.n_nodes)))
    else:
        side = args.side if args.side is not None else 2 * math.ceil(0.75 * math.sqrt(n_vis))
        build = torus_graph if args.graph == "torus" else grid_graph
        graph = build(side, n_vis, image_shape=shape if shape[0] > 1 else None)
        model = DTM(graph=graph, T=args.T, K=args.K, rate=args.rate, t_end=args.t_end, schedule=args.schedule,
                    learning_rate=args.learning_rate, batch_size=args.batch_size, n_epochs=args.epochs,
                    warmup=args.warmup, n_records=args.records, acp=not args.no_acp,
                    acp_threshold=args.acp_threshold, acp_lag=min(8, args.records - 1), beta=args.beta,
                    seed=args.seed, device=args.device, progress=not args.no_progress, verbose=args.verbose)
    done0 = getattr(model, "epochs_trained_", 0)
    print(f"heatbath train dtm-digits: {what}, {X.shape[0]} training and {Xte.shape[0]} held-out images; "
          f"{args.graph} {side}x{side} ({graph.n_nodes} nodes, {graph.n_edges} edges, {n_vis} visible), "
          f"T = {args.T}, K = {args.K} ({args.T * args.K} sweeps per sample), {args.epochs} epochs, "
          f"ACP {'off' if args.no_acp else 'on'}" + (f", resumed after epoch {done0}" if args.resume else ""))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.npz")
    info = _run_info(args, shape)
    t0 = time.perf_counter()
    if model.n_epochs > 0:
        with StopOnInterrupt("epoch", announce=True) as stop:
            model.fit(X, callback=stop)
        interrupted = stop.requested
    else:
        interrupted = False
    fit_s = time.perf_counter() - t0
    path = model.save(path)
    info.update({"fit_seconds": fit_s, "epochs": model.epochs_trained_,
                 "status": "interrupted" if interrupted else "trained"})
    _write_info(args.out, info)
    if interrupted:
        sys.stdout.flush()
        sys.stderr.write(f"heatbath train dtm-digits: interrupted after epoch {model.epochs_trained_} of "
                         f"{args.epochs}; saved {path}; resume with: {resume_command(args.argv)}\n")
        return EXIT_INTERRUPTED
    print(f"trained in {fit_s:.1f} s")
    print(f"saved {path}")
    try:
        _report(model, args, X, Xte, y, shape, info)
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write(f"\nheatbath train dtm-digits: interrupted after training; the model is saved in {path} "
                         f"(`heatbath sample {args.out}` and `heatbath evaluate {args.out}` use it)\n")
        return EXIT_INTERRUPTED
    return 0


def _write_info(folder: str, info: dict) -> None:
    tmp = os.path.join(folder, ".info.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1, default=float)
    os.replace(tmp, os.path.join(folder, "info.json"))


def _report(model, args, X, Xte, y, shape, info) -> None:
    """Samples, per-step mixing, sample quality and the plot of a trained run."""
    t0 = time.perf_counter()
    steps = model.sample(args.samples, seed=args.seed + 1, return_steps=True, progress=not args.no_progress)
    samp_s = time.perf_counter() - t0
    samples = steps[-1]
    print(f"{args.samples} samples in {samp_s:.2f} s ({args.samples / samp_s:,.0f} samples/s, "
          f"{args.T * args.K} sweeps each)")
    reps = model.mixing(Xte, n_chains=min(256, Xte.shape[0] * 4), n_sweeps=args.mixing_sweeps,
                        seed=args.seed + 2, progress=not args.no_progress)
    mix = []
    for t, r in enumerate(reps, 1):
        ds = r.decorrelation_sweeps
        print(f"step {t}: tau = {r.tau:.2f} sweeps, ESS {r.ess:,.0f} of {r.n_sweeps * r.n_chains}, "
              f"decorrelated (rho < 1/e) after {ds if ds is not None else '>' + str(r.n_sweeps - 1)} sweeps, "
              f"cp = {model.steps_[t - 1].cp:.3g}")
        mix.append({"step": t, **r.summary()})
    info.update({"sample_seconds": samp_s, "mixing": mix})
    q = _quality(samples, X, Xte, y, args.seed)
    if q is not None:
        info["quality"] = q
    if args.plot:
        print(f"wrote {plot_steps(steps, shape, args.plot)}")
    _write_info(args.out, info)


def _quality(samples, X, Xte, y, seed: int):
    """Print the sample quality (a table with labels, else MMD^2); returns its numbers."""
    from .. import evaluation

    if y is not None:
        q = evaluation.sample_quality(samples, X, Xte, y, seed=seed)
        print(evaluation.format_quality({"DTM": q}))
        return {k: v for k, v in q.items() if isinstance(v, (int, float))}
    e = evaluation.mmd(samples, Xte, return_stderr=True)
    print(f"MMD^2 to held-out data: {e.value:.5f} +- {e.stderr:.5f}")
    return {"mmd2": e.value, "mmd2_stderr": e.stderr}


def _load_run(folder: str):
    """(model, info) of a dtm-digits run folder (or its model.npz)."""
    from .. import checkpoint
    from ..dtm import DTM, MEBM

    path = folder if folder.endswith(".npz") else os.path.join(folder, "model.npz")
    cls = {"dtm": DTM, "mebm": MEBM}[checkpoint.read_kind(path)]
    model = cls.load(path)
    info = {}
    ipath = os.path.join(os.path.dirname(path), "info.json")
    if os.path.isfile(ipath):
        try:
            with open(ipath) as f:
                info = json.load(f)
        except (OSError, ValueError) as exc:
            raise checkpoint.CheckpointError(f"'path': {ipath} is corrupt ({exc})") from None
    if "image_shape" not in info:
        nv = model.graph_.n_visible
        side = math.isqrt(nv)
        info["image_shape"] = [side, side] if side * side == nv else [1, nv]
    return model, info


def sample_run(args) -> int:
    """``heatbath sample RUN`` on a dtm-digits run."""
    import numpy as np

    if args.scheduler:
        raise ValueError("'--scheduler': sharded sampling supports Gaussian diffusion runs, not DTM runs")
    model, info = _load_run(args.dir)
    t0 = time.perf_counter()
    if model.kind == "dtm":
        steps = model.sample(args.n, seed=args.seed, return_steps=True, progress=not args.no_progress)
        s = steps[-1]
    else:
        s, steps = model.sample(args.n, seed=args.seed), None
    dt = time.perf_counter() - t0
    sweeps = model.T * model.K if model.kind == "dtm" else model.K_total
    print(f"{args.n} samples of the {model.kind.upper()} run in {dt:.2f} s ({args.n / dt:,.0f} samples/s, "
          f"{sweeps} sweeps each); mean pixel {s.mean():.3f}")
    if args.save:
        np.save(args.save, s)
        print(f"saved {args.save}")
    if args.plot:
        shape = tuple(info["image_shape"])
        if steps is not None:
            plot_steps(steps, shape, args.plot)
        else:
            from ..diffusion import tasks

            tasks.plot_samples("digits", s, args.plot, title=f"MEBM: {min(len(s), 100)} of {len(s)} samples")
        print(f"plot: {args.plot}")
    return 0


def evaluate_run(args) -> int:
    """``heatbath evaluate RUN`` on a dtm-digits run: sample quality against
    the held-out images of its data."""
    model, info = _load_run(args.dir)
    data = info.get("data", "digits")
    ns = argparse.Namespace(data=None if data == "digits" else data, limit=info.get("limit"))
    X, Xte, y, _, what = _load_data(ns)
    n = 1000 if args.n is None else args.n
    kw = {"progress": not args.no_progress} if model.kind == "dtm" else {}
    t0 = time.perf_counter()
    s = model.sample(n, seed=args.seed, **kw)
    print(f"{model.kind.upper()} run on {what}: {n} samples ({time.perf_counter() - t0:.1f} s) against "
          f"{Xte.shape[0]} held-out images")
    _quality(s, X, Xte, y, args.seed)
    return 0


DTM_DIGITS = Trainer(
    help="denoising thermodynamic model (T sparse Boltzmann machines) on the binarized digits or IDX data; "
         "ends with per-step mixing and sample quality",
    configure=_configure,
    run=run,
)


def register(sub) -> None:
    """No top-level command: ``dtm-digits`` is a ``heatbath train`` trainer."""
