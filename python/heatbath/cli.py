"""The ``heatbath`` command. Each module in ``heatbath.commands`` adds its
subcommands through ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(
        prog="heatbath",
        description="heatbath: diffusion models, Boltzmann machines and Gibbs samplers on C++/CUDA kernels.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers of the commands, not commands
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        mod.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        # one clear line, no traceback, for bad paths, corrupt checkpoints,
        # unknown names, impossible sizes and missing optional packages
        parser.exit(2, f"heatbath {args.command}: error: {exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
