"""Side-by-side speed of heatbath and its peers, in one process run.

    python bench/compare.py                  # every section
    python bench/compare.py --only random    # some sections
    python bench/compare.py --list

Each ``bench/compare_<name>.py`` module provides ``SECTIONS``, a dict of
section name -> function(repeat). Timings are medians of interleaved runs
(peer and heatbath alternate, so machine noise hits both alike); ratios are
peer time / heatbath time.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import platform
import sys

import heatbath
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def load_sections() -> dict:
    sections = {}
    for path in sorted(glob.glob(os.path.join(HERE, "compare_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        sections.update(mod.SECTIONS)
    return sections


def main(argv=None) -> int:
    sections = load_sections()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="timed runs per measurement (median reported)")
    ap.add_argument("--only", choices=sorted(sections), action="append", help="run only these sections")
    ap.add_argument("--list", action="store_true", help="list the sections and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(sorted(sections)))
        return 0
    print(f"heatbath {heatbath.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, CPU level {heatbath.cpu_level()} (of {heatbath.cpu_levels()})")
    for name in args.only or list(sections):
        sections[name](args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
