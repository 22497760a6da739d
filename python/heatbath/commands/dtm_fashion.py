"""``heatbath train dtm-fashion``: the DTM paper's Fashion-MNIST experiment
(class-conditional DTM against the monolithic EBM on the 70 x 70 degree-12
torus, with and without ACP, at equal sweeps per sample), scored without any
network download; see :mod:`heatbath.dtm.fashion`. The trainer is registered
in :data:`heatbath.commands.train.TRAINERS`; this module adds no top-level
command."""

from __future__ import annotations

import argparse
import dataclasses
import os

from . import _args
from .train import Trainer, _nonneg_float, _positive_int


def _configure(p: argparse.ArgumentParser) -> None:
    from ..dtm.fashion import MODELS, PRESETS

    red, full = PRESETS["reduced"], PRESETS["full"]
    p.add_argument(
        "--budget",
        choices=sorted(PRESETS),
        default="reduced",
        help=f"reduced (default): {red.n_train:,} training images, {red.epochs} epochs, K = {red.K}, "
        f"{red.per_class} samples per class, about 5 minutes on 2 free CPU cores; full: all "
        f"training images, K = {full.K}, {full.per_class} samples per class, at most "
        f"{full.train_seconds:g} s of training per model (for a GPU)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder with the Fashion-MNIST IDX files (default: "
        "$HEATBATH_FASHION_MNIST, else /usr/share/datasets/fashion-mnist from "
        "`apt-get install dataset-fashion-mnist`)",
    )
    p.add_argument(
        "--models", default=None, help=f"comma-separated, from {','.join(MODELS)} (default: all four)"
    )
    p.add_argument("--n-train", type=_positive_int, default=None, help="training images (first N)")
    p.add_argument("--n-test", type=_positive_int, default=None, help="test images scored against (first N)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="passes over the training images (reduced 4, full 20, unless --train-seconds stops first)")
    p.add_argument(
        "--train-seconds",
        type=_nonneg_float,
        default=None,
        help="stop each model's training after this many seconds (checked after each chunk)",
    )
    p.add_argument(
        "--chunk",
        type=_positive_int,
        default=None,
        help="training images per fit call (the ACP controller adapts after each)",
    )
    p.add_argument("--T", type=_positive_int, default=None, help="reverse steps (default 8)")
    p.add_argument("--K", type=_positive_int, default=None, help="Gibbs sweeps per step when sampling")
    p.add_argument("--side", type=_positive_int, default=None, help="torus side (default 70)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="images per update (reduced 100, full 250)")
    p.add_argument(
        "--records", type=_positive_int, default=None, help="negative-phase sweeps recorded per update"
    )
    p.add_argument("--per-class", type=_positive_int, default=None, help="samples per class and mode")
    p.add_argument("--classifier-epochs", type=_positive_int, default=None,
                   help="epochs of the judging classifier (reduced 6, full 8)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="where the models and the classifier run (default cpu; cuda: cupy arrays on a GPU)")
    p.add_argument("--seed", type=_args.whole_number, default=None, help="Philox seed of the models (default 0)")
    p.add_argument(
        "--out",
        default=os.path.join("runs", "dtm-fashion"),
        help="folder for samples_<model>_<mode>.npz, checkpoints and results.json (default runs/dtm-fashion)",
    )
    _args.add_progress(p)


_OVERRIDES = {
    "n_train": "n_train",
    "n_test": "n_test",
    "epochs": "epochs",
    "train_seconds": "train_seconds",
    "chunk": "chunk",
    "T": "T",
    "K": "K",
    "side": "side",
    "batch_size": "batch_size",
    "records": "records",
    "per_class": "per_class",
    "classifier_epochs": "classifier_epochs",
    "device": "device",
    "seed": "seed",
}


def config_from_args(args: argparse.Namespace):
    from ..dtm.fashion import PRESETS

    cfg = dataclasses.replace(PRESETS[args.budget])
    for arg, field in _OVERRIDES.items():
        v = getattr(args, arg, None)
        if v is not None:
            setattr(cfg, field, v)
    if args.models:
        cfg.models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if cfg.records < 2:
        raise ValueError(f"'--records': need at least 2, got {cfg.records}")
    if cfg.side % 2:
        raise ValueError(f"'--side': the torus side must be even, got {cfg.side}")
    if cfg.device == "cuda":
        _args.check_device("cuda")
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..dtm.fashion import format_results, run_experiment

    cfg = config_from_args(args)
    print(f"heatbath train dtm-fashion ({args.budget} budget)")
    results = run_experiment(
        cfg, args.data, args.out, progress=not args.no_progress, log=lambda s: print(s, flush=True)
    )
    print()
    print(format_results(results))
    print(f"total {results['total_seconds']:.0f} s ({results['total_cpu_seconds']:.0f} s of CPU time); samples and "
          f"results.json in {args.out}")
    return 0


DTM_FASHION = Trainer(
    help="the DTM paper's Fashion-MNIST experiment: class-conditional DTM vs monolithic EBM, with and without "
    "ACP, at equal sweeps per sample; MMD, energy distance, classifier accuracy and classifier-feature "
    "Frechet distance",
    configure=_configure,
    run=run,
)


def register(sub) -> None:
    """No top-level command: ``dtm-fashion`` is a ``heatbath train`` trainer."""
