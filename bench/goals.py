"""The goals table that bench/gpu_check.sh prints last: each GPU benchmark
records its measured numbers with :func:`record`, one JSON line each, in the
file named by $HEATBATH_GOALS (nothing is recorded when it is unset), and
``python bench/goals.py FILE`` prints them as one table with pass/fail."""

from __future__ import annotations

import json
import os
import sys


def record(issue: str, what: str, value: float, goal: float, unit: str = "", higher: bool = True) -> bool:
    """Record one number and its goal (``higher``: value >= goal passes, else
    value <= goal). Returns whether it passes, and prints one line."""
    ok = bool(value >= goal) if higher else bool(value <= goal)
    line = dict(issue=issue, what=what, value=float(value), goal=float(goal), unit=unit, higher=higher, ok=ok)
    print(f"  goal: {what}: {value:.4g} {unit} ({'>=' if higher else '<='} {goal:.4g}) {'PASS' if ok else 'FAIL'}")
    path = os.environ.get("HEATBATH_GOALS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
    return ok


def table(path: str) -> int:
    rows = [json.loads(s) for s in open(path)] if os.path.exists(path) else []
    print(f"\n{'issue':6s} {'goal':70s} {'measured':>12s} {'asked':>12s} {'':4s}")
    for r in rows:
        op = ">=" if r["higher"] else "<="
        print(
            f"{r['issue']:6s} {r['what'][:70]:70s} {r['value']:12.4g} {op + format(r['goal'], '.4g'):>12s} "
            f"{'PASS' if r['ok'] else 'FAIL'} {r['unit']}"
        )
    bad = sum(not r["ok"] for r in rows)
    print(f"{len(rows) - bad} of {len(rows)} goals met")
    return 0


if __name__ == "__main__":
    sys.exit(table(sys.argv[1]))
