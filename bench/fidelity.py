"""The 2015 paper's Table 1 experiments over several seeds: K on held-out data,
its ceiling (the best K any model can reach on those data), the gap, and
their mean +- SD over seeds, beside the paper's value and whether it is
comparable.

Each run is ``heatbath train NAME --seed S [--noise N]`` (the seed sets the
training and held-out data and the model's initialization and noise); the run
folders go under ``--out``.

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/fidelity.py swissroll heartbeat --seeds 0 1 2
    OPENBLAS_NUM_THREADS=1 python bench/fidelity.py swissroll --noise 0 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time


def _mean_sd(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
    return m, sd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tasks", nargs="+", choices=["swissroll", "heartbeat"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--noise", type=float, default=None, help="Swiss roll noise (default: the trainer's)")
    p.add_argument(
        "--step1-beta", type=float, default=None, help="Swiss roll beta_1 (default: the trainer's)"
    )
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the trainer's)")
    p.add_argument("--eval-n", type=int, default=5000, help="held-out samples for K (default 5000)")
    p.add_argument("--out", default=os.path.join("runs", "fidelity"))
    args = p.parse_args()

    from heatbath.cli import main as cli
    from heatbath.diffusion import tasks as tk

    rows = {}
    for name in args.tasks:
        for seed in args.seeds:
            extra = []
            tag = name
            if name == "swissroll":
                if args.noise is not None:
                    extra += ["--noise", repr(args.noise)]
                    tag += f"-noise{args.noise:g}"
                if args.step1_beta is not None:
                    extra += ["--step1-beta", repr(args.step1_beta)]
                    tag += f"-beta{args.step1_beta:g}"
            if args.steps is not None:
                extra += ["--steps", str(args.steps)]
            out = os.path.join(args.out, f"{tag}-seed{seed}")
            t0 = time.perf_counter()
            code = cli(
                [
                    "train",
                    name,
                    "--seed",
                    str(seed),
                    "--eval-n",
                    str(args.eval_n),
                    "--out",
                    out,
                    "--quiet",
                    *extra,
                ]
            )
            if code != 0:
                raise SystemExit(f"heatbath train {name} --seed {seed} failed with exit code {code}")
            with open(os.path.join(out, "run.json")) as f:
                info = json.load(f)
            info["wall_seconds"] = time.perf_counter() - t0
            rows.setdefault(tag, []).append(info)
            print(
                f"[{tag} seed {seed}] K = {info['bound_bits']:.3f} +- {info['bound_stderr']:.3f}, "
                f"ceiling {info['ceiling_bits']:.3f}, gap {info['gap_bits']:.3f} bits; "
                f"training {info['train_seconds']:.0f} s",
                flush=True,
            )

    print()
    print(
        f"{'task':<28}{'seeds':>6}{'K (mean +- SD)':>20}{'ceiling':>10}{'gap (mean +- SD)':>20}"
        f"{'paper':>8}  comparable"
    )
    for tag, infos in rows.items():
        name = infos[0]["data"]
        ds = tk.dataset(name)
        k_m, k_sd = _mean_sd([i["bound_bits"] for i in infos])
        c_m, _ = _mean_sd([i["ceiling_bits"] for i in infos])
        g_m, g_sd = _mean_sd([i["gap_bits"] for i in infos])
        paper = f"{ds.paper_bits:g}" if ds.paper_bits is not None else "-"
        print(
            f"{tag:<28}{len(infos):>6}{k_m:>12.3f} +- {k_sd:<5.3f}{c_m:>10.3f}{g_m:>12.3f} +- {g_sd:<5.3f}"
            f"{paper:>8}  {'yes' if ds.paper_comparable else 'no'}"
        )
        print(
            f"{'':<28}per seed: "
            + ", ".join(f"{i['seed']}: K {i['bound_bits']:.3f}" for i in infos)
            + f"; training {_mean_sd([i['train_seconds'] for i in infos])[0]:.0f} s per run"
        )


if __name__ == "__main__":
    main()
