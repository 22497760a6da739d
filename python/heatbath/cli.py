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
    parser.add_argument("--version", action="version", version=f"heatbath {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers of the commands, not commands
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        mod.register(sub)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, for the line that says how to resume
    name = " ".join(filter(None, ["heatbath", args.command, getattr(args, "trainer", None)]))
    from ._blas import blas_threads

    try:
        with blas_threads():  # heatbath's commands work on small matrices: one BLAS thread unless told otherwise
            return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        # Ctrl-C outside a phase that saves its work (trainers catch it themselves)
        sys.stderr.write(f"\n{name}: interrupted\n")
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        # one clear line, no traceback, for bad paths, corrupt checkpoints,
        # unknown names, impossible sizes and missing optional packages
        parser.exit(2, f"{name}: error: {exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
