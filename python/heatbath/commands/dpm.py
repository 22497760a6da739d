"""``heatbath sample|evaluate|inpaint DIR``: use a trained diffusion run."""

from __future__ import annotations

import argparse
import time

import numpy as np


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def run_sample(args) -> int:
    from ..diffusion import tasks

    model, info = tasks.load_run(args.dir)
    t0 = time.perf_counter()
    if args.scheduler:
        s, where = _sample_on_dask(model, args), f" on the Dask cluster at {args.scheduler}"
    else:
        s, where = _host(model.sample(args.n, seed=args.seed, progress=not args.quiet)), ""
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
        if info["data"] == "swissroll":
            _, test = tasks.dataset("swissroll").load(info.get("seed", 0), **tasks.data_options("swissroll", info))
            tasks.plot_swissroll_figure(model, test, args.plot, seed=args.seed)
        else:
            tasks.plot_samples(info["data"], s, args.plot)
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
    from ..diffusion import tasks

    model, info = tasks.load_run(args.dir)
    name = info["data"]
    _, test = tasks.dataset(name).load(info.get("seed", 0), **tasks.data_options(name, info))
    t0 = time.perf_counter()
    b = tasks.evaluate(model, test, args.n, n_draws=args.draws, data=tasks.data_distribution(name, info))
    opts = tasks.data_options(name, info)
    what = f", noise {opts['noise']}" if "noise" in opts else ""
    print(f"{name}{what}: held-out bound on {min(args.n, len(test))} samples ({time.perf_counter() - t0:.1f} s):")
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
        x = _host(model.sample(len(known), seed=args.seed, mask=mask, known=known))
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
        tasks.plot_samples(name, x, args.plot)
        print(f"plot: {args.plot}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained diffusion run")
    p.add_argument("dir", help="run folder written by `heatbath train`")
    p.add_argument("--n", type=_positive_int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", metavar="FILE.npy")
    p.add_argument("--plot", metavar="FILE")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="sample in shards on this Dask scheduler (e.g. tcp://host:8786); same result")
    p.add_argument("--chunk", type=_positive_int, default=None, help="samples per shard with --scheduler")
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    p.set_defaults(fn=run_sample)

    p = sub.add_parser("evaluate", help="the bound K on held-out data, beside its ceiling (the best any model "
                       "can reach on those data) and the gap")
    p.add_argument("dir")
    p.add_argument("--n", type=_positive_int, default=2000, help="held-out samples (default 2000)")
    p.add_argument("--draws", type=_positive_int, default=1, help="noise draws per sample and step")
    p.set_defaults(fn=run_evaluate)

    p = sub.add_parser("inpaint", help="complete held-out samples from their first coordinates")
    p.add_argument("dir")
    p.add_argument("--known", type=int, default=None, help="number of leading coordinates known")
    p.add_argument("--n", type=_positive_int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="FILE")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="inpaint in shards on this Dask scheduler (e.g. tcp://host:8786); same result")
    p.add_argument("--chunk", type=_positive_int, default=None, help="samples per shard with --scheduler")
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    p.set_defaults(fn=run_inpaint)
