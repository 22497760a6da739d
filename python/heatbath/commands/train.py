"""``heatbath train MODEL-DATA``: train a built-in model on a built-in data set.

Trainers live in the registry :data:`TRAINERS`: a name (``rbm-digits``,
``dpm-...``) mapped to a :class:`Trainer` or to a ``"module:attribute"``
string naming one (imported only when the command line is built). To add a
trainer, add one entry to the dict, or call :func:`register_trainer` from
code that runs before ``heatbath.cli.build_parser``.
"""

from __future__ import annotations

import argparse
import importlib
import time
from dataclasses import dataclass
from typing import Callable, Dict, Union

from . import _args


@dataclass(frozen=True)
class Trainer:
    """One ``heatbath train`` sub-subcommand.

    Attributes
    ----------
    help : str
        One line for ``heatbath train --help``.
    configure : callable(parser)
        Adds the trainer's options to its argparse parser.
    run : callable(args) -> int
        Trains, prints, returns the exit status.
    """

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


TRAINERS: Dict[str, Union[Trainer, str]] = {
    "rbm-digits": "heatbath.commands.train:RBM_DIGITS",
    "swissroll": "heatbath.commands._dpm_train:SWISSROLL",
    "heartbeat": "heatbath.commands._dpm_train:HEARTBEAT",
    "digits": "heatbath.commands._dpm_train:DIGITS",
    "dtm-digits": "heatbath.commands.dtm:DTM_DIGITS",
    "dtm-fashion": "heatbath.commands.dtm_fashion:DTM_FASHION",
}


def register_trainer(name: str, trainer: Union[Trainer, str]) -> None:
    """Add (or replace) a trainer of ``heatbath train``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"'name': expected a non-empty string, got {name!r}")
    TRAINERS[name] = trainer


def _resolve(entry: Union[Trainer, str]) -> Trainer:
    if isinstance(entry, Trainer):
        return entry
    mod, _, attr = entry.partition(":")
    return getattr(importlib.import_module(mod), attr)


# kept for trainers registered elsewhere; the shared argument types live in heatbath.commands._args
_positive_int = _args.positive_int
_nonneg_float = _args.nonneg_float


def _betas(text: str):
    if text == "salakhutdinov":
        return text
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or v < 2:
        msg = f"expected 'salakhutdinov' or a number of temperatures >= 2, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return v


# ---------------------------------------------------------------------------
# rbm-digits
# ---------------------------------------------------------------------------


def _configure_rbm_digits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-components", type=_positive_int, default=100, help="hidden units (default 100)")
    p.add_argument(
        "--epochs", type=_positive_int, default=20, help="passes over the training set (default 20)"
    )
    p.add_argument("--learning-rate", type=_args.positive_float, default=0.03,
                   help="step size of the updates (default 0.03)")
    p.add_argument("--batch-size", type=_positive_int, default=10, help="images per update (default 10)")
    p.add_argument("--k", type=_positive_int, default=3, help="Gibbs sweeps per update (default 3)")
    p.add_argument("--cd", action="store_true", help="CD-k instead of persistent CD")
    p.add_argument(
        "--temperatures", type=_positive_int, default=1, help="> 1: PT-PCD with that many replicas"
    )
    p.add_argument("--momentum", type=_nonneg_float, default=0.5, help="momentum of the updates (default 0.5)")
    p.add_argument("--weight-decay", type=_nonneg_float, default=1e-4, help="L2 penalty (default 1e-4)")
    _args.add_seed(p, 0, "the initialization, the minibatches, the chains and AIS")
    p.add_argument("--ais-runs", type=_positive_int, default=100, help="AIS runs (default 100)")
    p.add_argument(
        "--ais-betas",
        type=_betas,
        default="salakhutdinov",
        help="'salakhutdinov' (14,501 temperatures, default) or a number >= 2 of equally spaced ones",
    )
    p.add_argument(
        "--compare-sklearn",
        action="store_true",
        help="also train scikit-learn's BernoulliRBM (PCD with 1 Gibbs sweep per update, no momentum or "
        "weight decay; same hidden units, learning rate, batch size and passes) and score it with the same "
        "AIS; the budgets are equal with --k 1 --momentum 0 --weight-decay 0",
    )
    p.add_argument("--save", metavar="PATH", type=_args.output_file,
                   help="write the parameters to an .npz file (checked before training)")
    _args.add_progress(p)


def _ais_report(name: str, rbm, X_train, X_test, args) -> float:
    t0 = time.perf_counter()
    est = rbm.log_partition(
        "ais", n_runs=args.ais_runs, betas=args.ais_betas, data=X_train, seed=args.seed + 1,
        progress=not args.no_progress,
    )
    dt = time.perf_counter() - t0
    ll_test = float(rbm.log_likelihood(X_test, log_z=est).mean())
    ll_train = float(rbm.log_likelihood(X_train, log_z=est).mean())
    print(
        f"{name}: AIS log Z = {est.log_z:.3f} +- {est.stderr:.3f} (ESS {est.ess:.1f} of {args.ais_runs}, "
        f"{dt:.1f} s); train log-likelihood {ll_train:.3f} nats"
    )
    print(f"{name}: test log-likelihood {ll_test:.3f} nats per image (AIS)")
    return ll_test


def run_rbm_digits(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from ..data.digits import binarized_digits
    from ..ebm import BernoulliRBM

    d = binarized_digits()
    rbm = BernoulliRBM(
        n_components=args.n_components,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        n_iter=args.epochs,
        random_state=args.seed,
        k=args.k,
        persistent=not args.cd,
        n_temperatures=args.temperatures,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
    )
    print(
        f"heatbath train rbm-digits: {d.X_train.shape[0]} training and {d.X_test.shape[0]} test images, "
        f"64 visible, {args.n_components} hidden units, {'CD' if args.cd else 'PCD'}-{args.k}, "
        f"{args.epochs} epochs"
    )
    bar = tqdm(total=args.epochs, unit="epoch", disable=args.no_progress)
    t0 = time.perf_counter()

    def progress(epoch: int, model) -> None:
        bar.update(1)

    rbm.fit(d.X_train, callback=progress)
    bar.close()
    fit_s = time.perf_counter() - t0
    n_updates = args.epochs * -(-d.X_train.shape[0] // args.batch_size)
    print(f"trained in {fit_s:.2f} s ({n_updates / fit_s:,.0f} updates/s)")
    if args.save:
        np.savez(
            args.save,
            components_=rbm.components_,
            intercept_hidden_=rbm.intercept_hidden_,
            intercept_visible_=rbm.intercept_visible_,
        )
        print(f"saved {args.save}")
    ll = _ais_report("heatbath BernoulliRBM", rbm, d.X_train, d.X_test, args)
    if args.compare_sklearn:
        from sklearn.neural_network import BernoulliRBM as SkRBM

        t0 = time.perf_counter()
        sk = SkRBM(
            n_components=args.n_components,
            learning_rate=args.learning_rate,
            n_iter=args.epochs,
            batch_size=args.batch_size,
            random_state=args.seed,
        ).fit(d.X_train.astype(np.float64))
        print(f"scikit-learn BernoulliRBM trained in {time.perf_counter() - t0:.2f} s")
        ev = BernoulliRBM(n_components=args.n_components, dtype="float64", random_state=args.seed)
        ev.components_, ev.intercept_hidden_ = sk.components_, sk.intercept_hidden_
        ev.intercept_visible_, ev.n_features_in_ = sk.intercept_visible_, sk.n_features_in_
        ll_sk = _ais_report("scikit-learn BernoulliRBM", ev, d.X_train, d.X_test, args)
        differs = []
        if args.k != 1 or args.temperatures != 1:
            differs.append(f"{args.k * args.temperatures} Gibbs sweeps per update against 1")
        if args.cd:
            differs.append("CD against PCD")
        if args.momentum:
            differs.append(f"momentum {args.momentum:g} against none")
        if args.weight_decay:
            differs.append(f"weight decay {args.weight_decay:g} against none")
        print(
            f"test log-likelihood: heatbath {ll:.3f}, scikit-learn {ll_sk:.3f} nats "
            f"(heatbath - scikit-learn = {ll - ll_sk:+.3f}; one seed, learning rate {args.learning_rate:g} for both)"
        )
        if differs:
            print(
                "not an equal budget: " + "; ".join(differs) + ". For like-for-like numbers use --k 1 --momentum 0 "
                "--weight-decay 0, or bench/rbm_budget.py (equal budgets, learning rates tuned, several seeds)"
            )
        else:
            print("equal budget: PCD-1, the same learning rate, batch size and number of updates, no momentum "
                  "or weight decay (the learning rate is not tuned for either; bench/rbm_budget.py tunes it)")
    print(f"test log-likelihood: {ll:.3f} nats")
    return 0


RBM_DIGITS = Trainer(
    help="Bernoulli RBM on binarized scikit-learn digits; ends with the AIS test log-likelihood",
    configure=_configure_rbm_digits,
    run=run_rbm_digits,
)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a built-in model on a built-in data set")
    tsub = p.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    for name in sorted(TRAINERS):
        t = _resolve(TRAINERS[name])
        tp = tsub.add_parser(name, help=t.help, description=t.help)
        t.configure(tp)
        tp.set_defaults(fn=t.run)
