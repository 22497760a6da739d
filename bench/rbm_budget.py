"""heatbath's BernoulliRBM against scikit-learn's at equal budgets.

Both train a 64-100 RBM on the binarized 8x8 digits by persistent
contrastive divergence with one Gibbs sweep per update (scikit-learn's only
setting), the same batch size and the same number of updates, without
momentum or weight decay (scikit-learn has neither). Each one's learning rate
is chosen from the same grid by the AIS log-likelihood on a held-out split of
the training digits (the last ``--val`` of them; the model is trained on the
rest, seed 0). With the chosen rate each is retrained on all training digits
for every seed and scored on the 300 test digits by the same AIS (heatbath's,
14,501 betas, 100 runs; scikit-learn's parameters are copied into a heatbath
RBM to be scored). A third row, heatbath's ``heatbath train rbm-digits``
defaults (3 sweeps per update, momentum 0.5, weight decay 1e-4), tuned the
same way, shows what the extra sweeps buy; it is not at equal budget.

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/rbm_budget.py [--epochs 20 100] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


def _mean_sd(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--epochs", type=int, nargs="+", default=[20, 100], help="budgets, in passes (default 20 100)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--grid", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3], help="learning rates")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--val", type=int, default=300, help="training digits held out for tuning (default 300)")
    p.add_argument("--ais-runs", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-defaults-row", action="store_true", help="skip heatbath's default settings")
    args = p.parse_args()

    import heatbath
    from heatbath.data.digits import binarized_digits
    from heatbath.ebm import BernoulliRBM
    from sklearn.neural_network import BernoulliRBM as SkRBM

    heatbath.set_num_threads(args.threads)
    d = binarized_digits()
    X, Xte = d.X_train.astype(np.float64), d.X_test.astype(np.float64)
    Xfit, Xval = X[: -args.val], X[-args.val :]

    def heatbath_rbm(lr, epochs, seed, defaults=False):
        kw = (
            dict(k=3, momentum=0.5, weight_decay=1e-4)
            if defaults
            else dict(k=1, momentum=0.0, weight_decay=0.0)
        )
        return BernoulliRBM(
            n_components=args.hidden,
            learning_rate=lr,
            batch_size=args.batch_size,
            n_iter=epochs,
            random_state=seed,
            persistent=True,
            **kw,
        )

    def sklearn_rbm(lr, epochs, seed):
        return SkRBM(
            n_components=args.hidden,
            learning_rate=lr,
            batch_size=args.batch_size,
            n_iter=epochs,
            random_state=seed,
        )

    def score(model, train, test, seed):
        """Mean AIS log-likelihood (nats) of ``test`` under a fitted model."""
        if isinstance(model, SkRBM):
            ev = BernoulliRBM(n_components=args.hidden, dtype="float64", random_state=seed)
            ev.components_, ev.intercept_hidden_ = model.components_, model.intercept_hidden_
            ev.intercept_visible_, ev.n_features_in_ = model.intercept_visible_, model.n_features_in_
            model = ev
        est = model.log_partition(
            "ais", n_runs=args.ais_runs, betas="salakhutdinov", data=train, seed=seed + 1
        )
        return float(model.log_likelihood(test, log_z=est).mean()), est.stderr

    configs = [
        ("heatbath PCD-1", lambda lr, e, s: heatbath_rbm(lr, e, s)),
        ("scikit-learn PCD-1", sklearn_rbm),
    ]
    if not args.no_defaults_row:
        configs.append(("heatbath PCD-3 + momentum/decay", lambda lr, e, s: heatbath_rbm(lr, e, s, True)))
    n_batches = -(-X.shape[0] // args.batch_size)
    print(
        f"digits: {Xfit.shape[0]} + {Xval.shape[0]} (tuning split) / {X.shape[0]} training, {Xte.shape[0]} test; "
        f"{args.hidden} hidden; batch {args.batch_size}; grid {args.grid}; seeds {args.seeds}; AIS "
        f"{args.ais_runs} runs x 14,501 betas",
        flush=True,
    )
    results = {}
    for epochs in args.epochs:
        for name, make in configs:
            val = {}
            for lr in args.grid:
                t0 = time.perf_counter()
                m = make(lr, epochs, 0).fit(Xfit)
                ll, se = score(m, Xfit, Xval, 0)
                val[lr] = ll if math.isfinite(ll) else -math.inf
                print(
                    f"[tune] {name}, {epochs} epochs, lr {lr:g}: validation {ll:.3f} nats "
                    f"(AIS se {se:.3f}; {time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
            best = max(val, key=val.get)
            test = []
            for seed in args.seeds:
                m = make(best, epochs, seed).fit(X)
                ll, se = score(m, X, Xte, seed)
                test.append(ll)
                print(
                    f"[test] {name}, {epochs} epochs, lr {best:g}, seed {seed}: {ll:.3f} nats (AIS se {se:.3f})",
                    flush=True,
                )
            results[(epochs, name)] = (best, val, test)

    print()
    for epochs in args.epochs:
        print(
            f"budget: {epochs} epochs x {n_batches} batches = {epochs * n_batches:,} updates of batch "
            f"{args.batch_size} (tuning runs: {epochs * -(-Xfit.shape[0] // args.batch_size):,} updates)"
        )
        print(f"  {'model':<34}{'lr':>6}  {'test LL, mean +- SD over seeds':<32}per seed")
        for name, _ in configs:
            best, val, test = results[(epochs, name)]
            m, sd = _mean_sd(test)
            print(f"  {name:<34}{best:>6g}  {m:>8.3f} +- {sd:<20.3f}{', '.join(f'{v:.2f}' for v in test)}")
        hb, sk = results[(epochs, "heatbath PCD-1")][2], results[(epochs, "scikit-learn PCD-1")][2]
        diff = np.asarray(hb) - np.asarray(sk)
        m, sd = _mean_sd(diff)
        winner = "heatbath" if m > 0 else "scikit-learn"
        print(
            f"  equal budget: heatbath - scikit-learn = {m:+.3f} +- {sd:.3f} nats (paired by seed): "
            f"{winner} ahead by {abs(m):.3f}"
        )


if __name__ == "__main__":
    main()
