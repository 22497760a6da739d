"""Every fenced ``python`` block of README.md and docs/*.md runs as written:
each block is saved as a script and run by a fresh interpreter in an empty
folder, as a reader would paste it into a file.

A block that cannot run here says so with a marker on the line above its
fence (see CONTRIBUTING.md), which the test turns into a skip with that
reason:

    <!-- example: skip: needs a CUDA GPU and dask-cuda -->
    <!-- example: slow: trains for about 2 minutes (the paper's setting) -->

``slow`` blocks run when ``HEATBATH_DOCS_SLOW=1`` is set; ``skip`` blocks
never run in the test suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*example:\s*(skip|slow):\s*(.*?)\s*-->\s*$")


def _blocks():
    out = []
    for f in FILES:
        text = f.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mk = MARKER.search(before)
            marks = []
            if mk and mk.group(1) == "skip":
                marks.append(pytest.mark.skip(reason=f"{f.name}:{line}: {mk.group(2)}"))
            elif mk and mk.group(1) == "slow" and os.environ.get("HEATBATH_DOCS_SLOW") != "1":
                marks.append(pytest.mark.skip(reason=f"{f.name}:{line}: {mk.group(2)} (HEATBATH_DOCS_SLOW=1 runs it)"))
            out.append(pytest.param(m.group(1), id=f"{f.relative_to(ROOT)}:{line}", marks=marks))
    return out


def test_markers_name_a_reason():
    """A marker without a reason, or one that is not on the line above a
    fence, is a mistake in the docs."""
    for f in FILES:
        lines = f.read_text().splitlines()
        for i, ln in enumerate(lines):
            if "<!-- example" in ln:
                m = MARKER.search(ln)
                assert m and m.group(2), f"{f.name}:{i + 1}: expected <!-- example: skip|slow: REASON -->"
                assert i + 1 < len(lines) and lines[i + 1].startswith("```python"), (
                    f"{f.name}:{i + 1}: the marker must be on the line above a ```python fence")


@pytest.mark.parametrize("code", _blocks())
def test_example_runs(code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600, env=env)
    assert p.returncode == 0, f"the example failed:\n{code}\n--- stderr ---\n{p.stderr[-3000:]}"
