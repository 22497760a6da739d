"""``heatbath train swissroll|heartbeat|digits``: the trainers of the
diffusion models (registered in :data:`heatbath.commands.train.TRAINERS`;
``heatbath sample|evaluate|inpaint`` live in :mod:`heatbath.commands.dpm`)."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ..diffusion import tasks
from .train import Trainer, _positive_int


def _device_xp(device: str):
    if device == "cuda":
        from .._backend import cupy_module, has_cuda

        if not has_cuda():
            raise ValueError("'--device': cuda was asked for but no usable GPU with heatbath._cuda and cupy is here")
        return cupy_module()
    return np


def _configure(name: str, steps: int, T: int, extra=None):
    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("--steps", type=_positive_int, default=steps, help=f"optimizer steps (default {steps})")
        p.add_argument("--T", type=_positive_int, default=T, help=f"trajectory length (default {T})")
        p.add_argument("--batch-size", type=_positive_int, default=512 if name != "heartbeat" else 256)
        p.add_argument("--lr", type=float, default=3e-3 if name != "heartbeat" else 2e-3)
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        p.add_argument("--out", default=os.path.join("runs", name), help=f"run folder (default runs/{name})")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--time-limit", type=float, default=None, metavar="SEC",
                       help="stop training after this many seconds")
        p.add_argument("--eval-n", type=_positive_int, default=2000,
                       help="held-out samples for the final bound")
        p.add_argument("--plot", metavar="FILE", help="also write a plot of samples (the paper's Figure 1 "
                       "for the Swiss roll)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if extra:
            extra(p)
    return configure


def _gaussian_extra(p):
    p.add_argument("--mode", choices=["paper", "epsilon"], default=None,
                   help="paper: learned mean and variance, trained on K; epsilon: DDPM noise prediction")
    p.add_argument("--step1-beta", type=float, default=None, metavar="BETA",
                   help="variance of the first forward step, the model's resolution (Swiss roll default 1e-6)")


def _swissroll_extra(p):
    _gaussian_extra(p)
    p.add_argument("--noise", type=float, default=tasks.SWISSROLL_NOISE, metavar="SIGMA",
                   help=f"standard deviation of the roll's Gaussian noise in raw units (default "
                        f"{tasks.SWISSROLL_NOISE}: a roll of finite entropy; 0: the noiseless roll, whose "
                        f"ceiling of K grows without limit as beta_1 -> 0)")


def _run(name: str):
    def run(args: argparse.Namespace) -> int:
        if args.T < 2:
            raise ValueError("'--T': the trajectory needs at least 2 steps")
        xp = _device_xp(args.device)
        ds = tasks.dataset(name)
        opts = {}
        if getattr(args, "noise", None) is not None:
            if not 0 <= args.noise < float("inf"):
                raise ValueError(f"'--noise': must be finite and >= 0, got {args.noise}")
            opts["noise"] = args.noise
        train, test = ds.load(args.seed, **opts)
        kw = {}
        if getattr(args, "mode", None):
            kw["mode"] = args.mode
        if getattr(args, "step1_beta", None) is not None:
            if not 0 < args.step1_beta < 1:
                raise ValueError(f"'--step1-beta': must lie in (0, 1), got {args.step1_beta}")
            kw["step1_beta"] = args.step1_beta
        model = tasks.build_model(name, args.T, args.seed, xp=xp, **kw)
        what = ds.paper_note + (f", noise {args.noise}" if "noise" in opts else "")
        print(f"heatbath train {name}: {what}; {len(train)} training, {len(test)} held-out samples; "
              f"{type(model).__name__} T = {model.T}, {args.steps} steps on {args.device}")
        t0 = time.perf_counter()
        model.fit(xp.asarray(train), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                  progress=not args.quiet, time_limit=args.time_limit)
        train_s = time.perf_counter() - t0
        os.makedirs(args.out, exist_ok=True)
        model.save(os.path.join(args.out, "model.npz"))
        info = {"data": name, "seed": args.seed, **opts}
        t1 = time.perf_counter()
        b = tasks.evaluate(model, xp.asarray(test), args.eval_n, data=tasks.data_distribution(name, info))
        eval_s = time.perf_counter() - t1
        info.update({"steps": model.steps_trained, "train_seconds": train_s, "eval_seconds": eval_s,
                     "bound_bits": b.bits, "bound_stderr": b.stderr, "ceiling_bits": b.ceiling,
                     "gap_bits": b.gap, "eval_n": int(args.eval_n), "paper_bits": ds.paper_bits,
                     "paper_comparable": ds.paper_comparable})
        tasks.write_info(args.out, info)
        print(f"trained {model.steps_trained} steps in {train_s:.1f} s; saved {os.path.join(args.out, 'model.npz')}")
        print(f"held-out bound ({min(args.eval_n, len(test))} samples, {eval_s:.1f} s):")
        print(tasks.report(name, b, model))
        if args.plot:
            if name == "swissroll":
                tasks.plot_swissroll_figure(model, test, args.plot)
            else:
                s = model.sample(64, seed=args.seed)
                tasks.plot_samples(name, s.get() if hasattr(s, "get") else s, args.plot)
            print(f"plot: {args.plot}")
        return 0
    return run


SWISSROLL = Trainer("the 2015 paper's Gaussian diffusion on the 2-D Swiss roll; prints K, its ceiling and the gap",
                    _configure("swissroll", 12000, 40, _swissroll_extra), _run("swissroll"))
HEARTBEAT = Trainer("the 2015 paper's binomial diffusion on binary heartbeat sequences (T = 2000); prints K, "
                    "its ceiling and the paper's value",
                    _configure("heartbeat", 40000, 2000), _run("heartbeat"))
DIGITS = Trainer("Gaussian diffusion on scikit-learn's 8x8 digits (rescaled)",
                 _configure("digits", 6000, 100, _gaussian_extra), _run("digits"))
