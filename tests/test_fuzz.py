"""Bad input over every public entry point (tests/fuzz_cases.py): no crash,
no hang, no silently non-finite result, and errors that name the argument.

The cases run in a child process with faulthandler on, so a crash fails this
test naming the case it happened in (the child's last "start" line), and a
case that runs past its limit is stopped with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_bad_input_cases():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "fuzz_cases.py")],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [d["start"] for d in lines if "start" in d]
    results = [d for d in lines if "case" in d]
    if proc.returncode != 0 or not lines or "done" not in lines[-1]:
        last = started[-1] if started else "(none)"
        raise AssertionError(
            f"the bad-input run died (exit code {proc.returncode}) in case {last!r}:\n{proc.stderr[-4000:]}"
        )
    failed = [d for d in results if not d["ok"]]
    assert len(results) == lines[-1]["done"] > 1000
    assert not failed, "\n".join(f"{d['case']}: {d['what']}" for d in failed[:40])
