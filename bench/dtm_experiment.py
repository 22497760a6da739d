"""DTM vs MEBM on binarized 8x8 digits at equal Gibbs sweeps per sample.

Trains on the 1,497 training digits (64 visible bits spread over a torus with
latent nodes):

* DTM with T steps, K sweeps per step, ACP on and off;
* MEBM on the same graph with the same gradient, Adam, epochs and negative-
  phase budget per update, ACP on and off, sampled with T*K sweeps from random
  spins (the same total sweeps per sample);

then prints, per model: the squared MMD (Gaussian kernel, median-heuristic
bandwidth of the test set) of n generated samples to the 300 held-out digits,
with the floor (as many training digits vs the same test set), and the mixing
of the chains: the integrated autocorrelation time and the sweeps until the
autocorrelation of a random projection of the visible spins drops below 1/e
(DTM: every step, with x^t from noised test digits; MEBM: its single chain at
equilibrium after T*K sweeps). Finally the full sample-quality table of
``heatbath.evaluation`` (MMD, energy distance, pixel-marginal error,
nearest-neighbour class entropy, with the train-vs-test floor) for these
models and heatbath's RBM and binomial diffusion model on the same data
(``--baselines``).

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/dtm_experiment.py [--T 6 --K 20 --epochs 40 --side 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=6)
    p.add_argument("--K", type=int, default=20)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--side", type=int, default=12)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixing-sweeps", type=int, default=300)
    p.add_argument("--acp-threshold", type=float, default=0.05,
                   help="ACP target autocorrelation at lag 8 sweeps (default 0.05)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--models", default="dtm_acp,dtm,mebm_acp,mebm")
    p.add_argument("--long", type=int, default=10,
                   help="also sample the MEBMs with this many times T*K sweeps (default 10)")
    p.add_argument("--baselines", default="rbm,binomial",
                   help="heatbath.evaluation baselines for the last table ('' for none)")
    args = p.parse_args()

    import heatbath
    from heatbath.data.digits import binarized_digits
    from heatbath.dtm import DTM, MEBM, torus_graph

    heatbath.set_num_threads(args.threads)
    d = binarized_digits()
    Xtr, Xte = d.X_train.astype(np.uint8), d.X_test.astype(np.uint8)
    graph = torus_graph(args.side, 64)
    T, K = args.T, args.K
    from heatbath import evaluation as ev

    bw = ev.median_heuristic(Xte)

    def mmd(s):
        e = ev.mmd(s, Xte, bandwidth=bw, return_stderr=True)
        return e.value, e.stderr
    source = "heatbath.evaluation.mmd"

    common = dict(graph=graph, learning_rate=args.lr, n_epochs=args.epochs, seed=args.seed,
                  acp_threshold=args.acp_threshold, progress=not args.quiet)
    print(f"digits: {len(Xtr)} train / {len(Xte)} test, torus side {args.side} ({graph.n_nodes} nodes, "
          f"{graph.n_edges} edges, {graph.n_visible} visible), T = {T}, K = {K}, "
          f"{T * K} sweeps per sample for every model; {args.epochs} epochs; MMD^2 by {source}, "
          f"bandwidth {bw:.3f}")
    rows = []
    samples = {}
    rng = np.random.default_rng(args.seed)
    floor_idx = rng.choice(len(Xtr), size=min(args.samples, len(Xtr)), replace=False)
    f_val, f_se = mmd(Xtr[floor_idx])
    for name in args.models.split(","):
        acp = name.endswith("_acp")
        t0 = time.perf_counter()
        if name.startswith("dtm"):
            m = DTM(T=T, K=K, acp=acp, **common).fit(Xtr)
        else:
            m = MEBM(K_total=T * K, acp=acp, **common).fit(Xtr)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = m.sample(args.samples, seed=args.seed + 1)
        samp_s = time.perf_counter() - t0
        samples[name] = s
        val, se = mmd(s)
        if name.startswith("dtm"):
            reps = m.mixing(Xte, n_chains=256, n_sweeps=args.mixing_sweeps, seed=args.seed + 2)
        else:
            reps = m.mixing(n_chains=256, n_sweeps=args.mixing_sweeps, seed=args.seed + 2)
        dec = [r.decorrelation_sweeps for r in reps]
        dec_txt = "/".join(str(x) if x is not None else f">{args.mixing_sweeps - 1}" for x in dec)
        tau = [r.tau for r in reps]
        cps = [h["cp"] for h in m.history_[-len(m.steps_):]]
        rows.append((name, val, se, max(tau), dec_txt, max(cps), fit_s, samp_s))
        if name.startswith("mebm") and args.long > 1:
            s_long = m.sample(args.samples, K_total=args.long * T * K, seed=args.seed + 1)
            v_long, se_long = mmd(s_long)
            rows.append((f"{name} {args.long}x", v_long, se_long, max(tau), dec_txt, max(cps), fit_s, samp_s))
            print(f"{name} sampled with {args.long * T * K} sweeps: MMD^2 {v_long:.5f} +- {se_long:.5f}",
                  flush=True)
        print(f"{name}: MMD^2 {val:.5f} +- {se:.5f}, tau per step {[round(t, 2) for t in tau]}, "
              f"sweeps to decorrelate {dec_txt}, cp {[round(c, 3) for c in cps]}, fit {fit_s:.1f} s, "
              f"{args.samples} samples in {samp_s:.2f} s", flush=True)
    print()
    print(f"{'model':<14}{'MMD^2':>10}{'+- se':>9}{'max tau':>9}  {'sweeps to decorrelate (per step)':<34}"
          f"{'final cp':>9}{'fit s':>7}")
    print(f"{'floor':<14}{f_val:>10.5f}{f_se:>9.5f}")
    for name, val, se, tau, dec, cp, fs, ss in rows:
        print(f"{name:<14}{val:>10.5f}{se:>9.5f}{tau:>9.2f}  {dec:<34}{cp:>9.3f}{fs:>7.1f}")

    for name in filter(None, args.baselines.split(",")):
        t0 = time.perf_counter()
        samples[name] = ev.baseline_samples(name, Xtr, args.samples, seed=args.seed)
        print(f"baseline {name}: trained and sampled in {time.perf_counter() - t0:.1f} s", flush=True)
    quality = {name: ev.sample_quality(s, Xtr, Xte, d.y_train, bandwidth=bw, seed=args.seed)
               for name, s in samples.items()}
    print()
    print(f"sample quality of {args.samples} samples against the {len(Xte)} held-out digits "
          f"(heatbath.evaluation.sample_quality):")
    print(ev.format_quality(quality))


if __name__ == "__main__":
    main()
