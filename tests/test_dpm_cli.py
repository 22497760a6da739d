"""`heatbath train swissroll|heartbeat`, `sample`, `evaluate`, `inpaint` on
tiny runs, and their one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from heatbath.cli import main


def _cli(*args):
    """Run the command in a subprocess: (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "heatbath.cli", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def swissroll_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sr"
    assert main(["train", "swissroll", "--steps", "30", "--T", "10", "--batch-size", "64", "--eval-n", "50",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_train_evaluate_sample_inpaint(swissroll_run, capsys, tmp_path):
    capsys.readouterr()
    assert main(["evaluate", str(swissroll_run), "--n", "50"]) == 0
    out = capsys.readouterr().out
    # K beside its ceiling on the (default, finite-entropy) roll, and the paper's value marked as not comparable
    assert "noise 0.1" in out and "ceiling" in out and "gap" in out
    assert "paper: 2.35 bits, not comparable" in out and "above" not in out
    save = tmp_path / "s.npy"
    assert main(["sample", str(swissroll_run), "--n", "20", "--save", str(save), "--quiet"]) == 0
    assert np.load(save).shape == (20, 2)
    assert main(["inpaint", str(swissroll_run), "--n", "10"]) == 0
    assert "known part kept: True" in capsys.readouterr().out


def test_heartbeat_run(tmp_path, capsys):
    out = tmp_path / "hb"
    assert main(["train", "heartbeat", "--steps", "5", "--T", "20", "--eval-n", "20", "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "ceiling (the best K any model can reach: -H(X^0), the data's entropy) = -2.322 bits" in text
    assert "paper: -2.414 bits, comparable" in text
    assert main(["inpaint", str(out), "--n", "10"]) == 0
    assert "known part kept: True" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "/nonexistent/run"],
        ["train", "mnist"],
        ["train", "swissroll", "--T", "1", "--steps", "1"],
        ["train", "swissroll", "--steps", "0"],
        ["train", "swissroll", "--steps", "1", "--noise", "-1"],
        ["sample", "/nonexistent/run", "--n", "5"],
    ],
)
def test_errors_are_one_line_without_traceback(args):
    code, out, err = _cli(*args)
    assert code != 0
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("heatbath")


def test_corrupt_and_foreign_checkpoints(tmp_path, swissroll_run):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"garbage")
    code, _, err = _cli("sample", str(tmp_path))
    assert code != 0 and "corrupt" in err and "Traceback" not in err
    from heatbath import checkpoint

    checkpoint.save(str(tmp_path / "model.npz"), "BernoulliRBM", {}, {"w": np.zeros(3)})
    code, _, err = _cli("evaluate", str(tmp_path))
    assert code != 0 and "not a diffusion model" in err and "Traceback" not in err
