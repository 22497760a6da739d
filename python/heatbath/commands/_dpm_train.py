"""``heatbath train swissroll|heartbeat|digits``: the trainers of the
diffusion models (registered in :data:`heatbath.commands.train.TRAINERS`;
``heatbath sample|evaluate|inpaint`` live in :mod:`heatbath.commands.dpm`)."""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from ..diffusion import tasks
from . import _args
from ._interrupt import EXIT_INTERRUPTED, StopOnInterrupt, resume_command
from .train import Trainer


def _device_xp(device: str):
    if device == "cuda":
        from .._backend import cupy_module

        _args.check_device(device)
        return cupy_module()
    return np


_PLOT_HELP = {
    "swissroll": "also write the paper's Figure 1 for the trained model: forward diffusion, learned reverse "
                 "diffusion and its drift (PNG, PDF, SVG, ...; needs matplotlib)",
    "heartbeat": "also write a raster of 40 sampled sequences (needs matplotlib)",
    "digits": "also write a grid of 64 sampled digits (needs matplotlib)",
}


def _configure(name: str, steps: int, T: int, extra=None):
    batch, lr = (512, 3e-3) if name != "heartbeat" else (256, 2e-3)

    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("--steps", type=_args.positive_int, default=steps,
                       help=f"optimizer steps (default {steps})")
        p.add_argument("--T", type=_args.int_at_least(2), default=T,
                       help=f"trajectory length, the number of diffusion steps (default {T})")
        p.add_argument("--batch-size", type=_args.positive_int, default=batch,
                       help=f"training samples per optimizer step (default {batch})")
        p.add_argument("--lr", type=_args.positive_float, default=lr,
                       help=f"Adam learning rate at the start, decayed on a cosine (default {lr:g})")
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="where to train: cpu (default) or cuda (a GPU with cupy)")
        p.add_argument("--out", type=_args.output_dir, default=os.path.join("runs", name),
                       help=f"run folder for model.npz and run.json (default runs/{name})")
        _args.add_seed(p, 0, "the initialization, the minibatches and the noise")
        p.add_argument("--time-limit", type=_args.seconds, default=None, metavar="SEC",
                       help="stop training after SEC seconds (the final bound and the plot come after it and "
                            "are not counted; --resume continues the training later)")
        p.add_argument("--resume", action="store_true",
                       help="continue the interrupted (Ctrl-C) or time-limited run in --out from its "
                            "checkpoint, with the same options; ends as the uninterrupted run would")
        p.add_argument("--eval-n", type=_args.positive_int, default=2000,
                       help="held-out samples for the final bound K (default 2000)")
        p.add_argument("--plot", metavar="FILE", type=_args.plot_file, help=_PLOT_HELP[name])
        _args.add_progress(p)
        if extra:
            extra(p)
    return configure


def _gaussian_extra(p):
    p.add_argument("--mode", choices=["paper", "epsilon"], default=None,
                   help="paper: learned mean and variance, trained on K; epsilon: DDPM noise prediction")
    p.add_argument("--step1-beta", type=_args.positive_float, default=None, metavar="BETA",
                   help="variance of the first forward step, the model's resolution (Swiss roll default 1e-6)")


def _swissroll_extra(p):
    _gaussian_extra(p)
    p.add_argument("--noise", type=float, default=tasks.SWISSROLL_NOISE, metavar="SIGMA",
                   help=f"standard deviation of the roll's Gaussian noise in raw units (default "
                        f"{tasks.SWISSROLL_NOISE}: a roll of finite entropy; 0: the noiseless roll, whose "
                        f"ceiling of K grows without limit as beta_1 -> 0)")
def _train_options(args) -> dict:
    return {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr}


def _resume_model(name: str, args, xp):
    """The model of the checkpoint in ``args.out`` and its run info, checked
    against the command line."""
    path = os.path.join(args.out, "model.npz")
    if not os.path.isfile(path):
        raise ValueError(f"'--resume': no checkpoint {path} to resume from (give the --out of the run)")
    model, info = tasks.load_run(args.out, xp=xp)
    if info.get("data") != name:
        raise ValueError(f"'--resume': {path} is a {info.get('data')} run, not {name}")
    if model.T != args.T:
        raise ValueError(f"'--T': the run in {args.out} has T = {model.T}; resume with --T {model.T}")
    if model.seed != args.seed:
        raise ValueError(f"'--seed': the run in {args.out} has seed {model.seed}; resume with --seed {model.seed}")
    saved = info.get("train_options")
    if saved is not None:
        for k, v in _train_options(args).items():
            if saved.get(k) != v:
                opt = "--" + k.replace("_", "-")
                raise ValueError(f"'{opt}': the run in {args.out} was started with {opt} {saved.get(k)}; "
                                 f"resume with the same training options")
    if name == "swissroll" and tasks.data_options(name, info)["noise"] != args.noise:
        raise ValueError(f"'--noise': the run in {args.out} was trained with noise "
                         f"{tasks.data_options(name, info)['noise']}; resume with the same --noise")
    if model.steps_trained > args.steps:
        raise ValueError(f"'--steps': the run in {args.out} has already trained {model.steps_trained} steps")
    return model


def _run(name: str):
    def run(args: argparse.Namespace) -> int:
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
        if args.resume:
            model = _resume_model(name, args, xp)
        else:
            model = tasks.build_model(name, args.T, args.seed, xp=xp, **kw)
        start = model.steps_trained
        n_eval = min(args.eval_n, len(test))
        what = ds.paper_note + (f", noise {opts['noise']}" if "noise" in opts else "")
        print(f"heatbath train {name}: {what}; {len(train)} training samples, K on {n_eval} of "
              f"{len(test)} held-out samples (--eval-n); {type(model).__name__} T = {model.T}, "
              f"{args.steps} steps on {args.device}" + (f", resumed at step {start}" if args.resume else ""))
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "model.npz")
        info = {"data": name, "seed": args.seed, **opts, "train_options": _train_options(args)}
        t0 = time.perf_counter()
        with StopOnInterrupt("step") as stop:
            model.fit(xp.asarray(train), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      progress=not args.no_progress, time_limit=args.time_limit, callback=stop, start=start)
        train_s = time.perf_counter() - t0
        model.save(path)
        done = model.steps_trained >= args.steps
        info.update({"steps": model.steps_trained, "train_seconds": train_s,
                     "status": "trained" if done else ("interrupted" if stop.requested else "time limit")})
        tasks.write_info(args.out, info)
        if stop.requested:
            sys.stdout.flush()
            sys.stderr.write(f"heatbath train {name}: interrupted after step {model.steps_trained} of "
                             f"{args.steps}; saved {path}; resume with: {resume_command(args.argv)}\n")
            return EXIT_INTERRUPTED
        print(f"trained {model.steps_trained - start} steps in {train_s:.1f} s; saved {path}")
        if not done:
            print(f"time limit: stopped after step {model.steps_trained} of {args.steps}; the bound and plot "
                  f"below are not counted in it; `{resume_command(args.argv)}` continues the training")
        try:
            t1 = time.perf_counter()
            b = tasks.evaluate(model, xp.asarray(test), args.eval_n, progress=not args.no_progress,
                               data=tasks.data_distribution(name, info))
            eval_s = time.perf_counter() - t1
            info.update({"eval_seconds": eval_s, "bound_bits": b.bits, "bound_stderr": b.stderr,
                         "ceiling_bits": b.ceiling, "gap_bits": b.gap, "eval_n": n_eval,
                         "paper_bits": ds.paper_bits, "paper_comparable": ds.paper_comparable})
            tasks.write_info(args.out, info)
            print(f"held-out bound ({n_eval} samples, {eval_s:.1f} s):")
            print(tasks.report(name, b, model))
            if args.plot:
                if name == "swissroll":
                    tasks.plot_swissroll_figure(model, test, args.plot)
                else:
                    s = model.sample(64, seed=args.seed, progress=not args.no_progress)
                    tasks.plot_samples(name, s.get() if hasattr(s, "get") else s, args.plot)
                print(f"plot: {args.plot}")
        except KeyboardInterrupt:
            sys.stdout.flush()
            sys.stderr.write(f"\nheatbath train {name}: interrupted after training; the model is saved in {path} "
                             f"(`heatbath evaluate {args.out}` computes the bound)\n")
            return EXIT_INTERRUPTED
        return 0
    return run


SWISSROLL = Trainer("the 2015 paper's Gaussian diffusion on the 2-D Swiss roll; prints K, its ceiling and the gap",
                    _configure("swissroll", 12000, 40, _swissroll_extra), _run("swissroll"))
HEARTBEAT = Trainer("the 2015 paper's binomial diffusion on binary heartbeat sequences (T = 2000); prints K, "
                    "its ceiling and the paper's value",
                    _configure("heartbeat", 40000, 2000), _run("heartbeat"))
DIGITS = Trainer("Gaussian diffusion on scikit-learn's 8x8 digits (rescaled)",
                 _configure("digits", 6000, 100, _gaussian_extra), _run("digits"))
