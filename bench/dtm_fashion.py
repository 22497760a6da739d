"""The DTM paper's Fashion-MNIST experiment: ``heatbath train dtm-fashion``
(see :mod:`heatbath.dtm.fashion`) with ``--full`` / ``--reduced`` for the two
budgets; every other option is passed on.

Usage::

    OPENBLAS_NUM_THREADS=2 python bench/dtm_fashion.py --reduced --out runs/dtm-fashion   # 2 CPU cores
    python bench/dtm_fashion.py --full --device cuda --out runs/dtm-fashion-full         # a GPU
"""

from __future__ import annotations

import sys

from heatbath.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    budget = "reduced"
    rest = []
    for a in argv:
        if a in ("--full", "--reduced"):
            budget = a[2:]
        else:
            rest.append(a)
    sys.exit(main(["train", "dtm-fashion", "--budget", budget, *rest]))
