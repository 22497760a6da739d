from __future__ import annotations

import re

import pytest
from heatbath.cli import main


def test_demo_prints_moments_close_to_exact(capsys):
    assert main(["demo", "-n", "400000", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): [float(v) for v in m.group(2).split()[:4]]
            for m in re.finditer(r"^(uniform|normal)\s+(.*)$", out, re.M)}
    # means within 5 standard errors of 1/2 and 0 for n = 4e5
    assert abs(rows["uniform"][0] - 0.5) < 5 * (1 / 12 / 4e5) ** 0.5
    assert abs(rows["normal"][0]) < 5 * (1 / 4e5) ** 0.5
    assert abs(rows["normal"][1] - 1) < 5 * (2 / 4e5) ** 0.5


def test_info_runs(capsys):
    assert main(["info"]) == 0
    assert "CPU levels compiled" in capsys.readouterr().out


def test_bad_arguments_exit_with_usage_error():
    with pytest.raises(SystemExit) as e:
        main(["demo", "-n", "0"])
    assert e.value.code == 2
