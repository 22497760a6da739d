"""``heatbath sample|evaluate|inpaint DIR``: use a trained run (a diffusion
model; ``sample`` and ``evaluate`` also a DTM run of ``train dtm-digits``)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import _args


def _host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _run_kind(folder: str) -> str:
    from .. import checkpoint

    path = folder if folder.endswith(".npz") else f"{folder.rstrip('/')}/model.npz"
    return checkpoint.read_kind(path)


def run_sample(args) -> int:
    if _run_kind(args.dir) in ("dtm", "mebm"):
        from .dtm import sample_run

        return sample_run(args)
    from ..diffusion import tasks

    model, info = tasks.load_run(args.dir)
    t0 = time.perf_counter()
    if args.scheduler:
        s, where = _sample_on_dask(model, args), f" on the Dask cluster at {args.scheduler}"
    else:
        s, where = _host(model.sample(args.n, seed=args.seed, progress=not args.no_progress)), ""
    dt = time.perf_counter() - t0
    print(f"{args.n} samples of {info['data']} in {dt:.2f} s ({args.n / dt:,.0f} samples/s){where}")
    if info["data"] == "heartbeat":
        period_ok = np.mean([_is_heartbeat(r) for r in s])
        print(f"fraction of samples that are exact heartbeats (a 1 every 5th bin): {period_ok:.3f}")
    else:
        print(f"sample mean {np.round(s.mean(0)[:4], 3)}..., variance {np.round(s.var(0)[:4], 3)}...")
    if args.save:
        np.save(args.save, s)
        print(f"saved {args.save}")
    if args.plot:
        ref = None
        if info["data"] == "swissroll":
            _, ref = tasks.dataset("swissroll").load(info.get("seed", 0), **tasks.data_options("swissroll", info))
        what = {"swissroll": "Swiss roll", "heartbeat": "binary heartbeat"}.get(info["data"], info["data"])
        title = f"{what}: {len(s)} samples drawn with seed {args.seed}"
        if info["data"] == "heartbeat":
            title = f"{what}: {min(len(s), 40)} of {len(s)} samples drawn with seed {args.seed}"
        tasks.plot_samples(info["data"], s, args.plot, title=title,
                           reference=None if ref is None else ref[: len(s)])
        print(f"plot: {args.plot}")
    return 0


def _sample_on_dask(model, args, n=None, mask=None, known=None) -> np.ndarray:
    """``n`` (default ``args.n``) samples in shards on the scheduler at
    ``args.scheduler``: the same array as the one-process run."""
    from ..diffusion import GaussianDPM

    if not isinstance(model, GaussianDPM):
        raise ValueError(
            f"'--scheduler': sharded sampling supports Gaussian diffusion runs, not {type(model).__name__}"
        )
    from .. import distributed as hd
    from ._dask import scheduler_client

    with scheduler_client(args) as client:
        return hd.sample_dpm(client, model, args.n if n is None else n, seed=args.seed, chunk=args.chunk,
                             mask=mask, known=known)


def _is_heartbeat(row, period=5) -> bool:
    ones = np.flatnonzero(row)
    return len(ones) > 0 and np.all(np.diff(ones) == period) and ones[0] < period and len(row) - 1 - ones[-1] < period


def run_evaluate(args) -> int:
    if _run_kind(args.dir) in ("dtm", "mebm"):
        from .dtm import evaluate_run

        return evaluate_run(args)
    from ..diffusion import tasks

    model, info = tasks.load_run(args.dir)
    name = info["data"]
    _, test = tasks.dataset(name).load(info.get("seed", 0), **tasks.data_options(name, info))
    t0 = time.perf_counter()
    n = 2000 if args.n is None else args.n
    b = tasks.evaluate(model, test, n, n_draws=args.draws, progress=not args.no_progress,
                       data=tasks.data_distribution(name, info))
    opts = tasks.data_options(name, info)
    what = f", noise {opts['noise']}" if "noise" in opts else ""
    print(f"{name}{what}: held-out bound on {min(n, len(test))} samples ({time.perf_counter() - t0:.1f} s):")
    print(tasks.report(name, b, model))
    return 0


def run_inpaint(args) -> int:
    from ..diffusion import tasks

    model, info = tasks.load_run(args.dir)
    name = info["data"]
    _, test = tasks.dataset(name).load(info.get("seed", 0), **tasks.data_options(name, info))
    d = model.dim
    if args.known is None:
        k = {"swissroll": 1, "heartbeat": 5}.get(name, d // 2)
    else:
        k = args.known
    if not 1 <= k < d:
        raise ValueError(f"'--known': need 1 <= known < {d} leading coordinates, got {k}")
    mask = np.zeros(d, dtype=bool)
    mask[:k] = True
    known = np.repeat(test[: args.n], 1, axis=0)
    if args.scheduler:
        x = _sample_on_dask(model, args, len(known), mask, known)
    else:
        x = _host(model.sample(len(known), seed=args.seed, mask=mask, known=known, progress=not args.no_progress))
    kept = bool(np.array_equal(x[:, mask], known[:, mask]))
    print(f"inpainted {len(x)} {name} samples with the first {k} of {d} coordinates known; known part kept: {kept}")
    if name == "heartbeat":
        ok = np.mean([_is_heartbeat(r) for r in x])
        exact = np.mean(np.all(x == known, axis=1))
        print(f"completions that are heartbeats: {ok:.3f}; equal to the held-out sequence: {exact:.3f}")
    else:
        err = np.sqrt(((x[:, ~mask] - known[:, ~mask]) ** 2).mean())
        print(f"RMS distance of the inpainted part to the held-out values: {err:.3f}")
    if args.plot:
        tasks.plot_inpainting(name, x, known, k, args.plot)
        print(f"plot: {args.plot}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained run (diffusion model or DTM)",
                       description="Draw samples from a run folder written by `heatbath train` (swissroll, "
                                   "heartbeat, digits or dtm-digits).")
    p.add_argument("dir", help="run folder written by `heatbath train` (or its model.npz)")
    p.add_argument("--n", type=_args.positive_int, default=1000, help="number of samples (default 1000)")
    _args.add_seed(p, 0, "the samples")
    p.add_argument("--save", metavar="FILE.npy", type=_args.output_file, help="write the samples to a .npy file")
    p.add_argument("--plot", metavar="FILE", type=_args.plot_file,
                   help="write a figure of the samples just drawn (needs matplotlib)")
    _args.add_progress(p)
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="sample in shards on this Dask scheduler (e.g. tcp://host:8786); same result")
    p.add_argument("--chunk", type=_args.positive_int, default=None, help="samples per shard with --scheduler")
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    p.set_defaults(fn=run_sample)

    p = sub.add_parser("evaluate", help="score a trained run on held-out data (diffusion: the bound K beside "
                                        "the paper's value; DTM: sample quality)")
    p.add_argument("dir", help="run folder written by `heatbath train` (or its model.npz)")
    p.add_argument("--n", type=_args.positive_int, default=None,
                   help="held-out samples in the bound (default 2000); for a DTM run, samples drawn (default 1000)")
    p.add_argument("--draws", type=_args.positive_int, default=1,
                   help="noise draws per sample and step in the bound (default 1)")
    _args.add_seed(p, 0, "the samples of a DTM run")
    _args.add_progress(p)
    p.set_defaults(fn=run_evaluate)

    p = sub.add_parser("inpaint", help="complete held-out samples from their first coordinates")
    p.add_argument("dir", help="run folder written by `heatbath train swissroll|heartbeat|digits`")
    p.add_argument("--known", type=_args.positive_int, default=None,
                   help="number of leading coordinates known (default: 1 of 2 for the Swiss roll, 5 bins of "
                        "the heartbeat, half the pixels of the digits)")
    p.add_argument("--n", type=_args.positive_int, default=200, help="held-out samples to complete (default 200)")
    _args.add_seed(p, 0, "the completions")
    p.add_argument("--plot", metavar="FILE", type=_args.plot_file,
                   help="write a figure of the completions beside the held-out truth (needs matplotlib)")
    _args.add_progress(p)
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="inpaint in shards on this Dask scheduler (e.g. tcp://host:8786); same result")
    p.add_argument("--chunk", type=_args.positive_int, default=None, help="samples per shard with --scheduler")
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    p.set_defaults(fn=run_inpaint)
