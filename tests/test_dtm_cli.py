"""``heatbath train dtm-digits`` end to end on a tiny budget, on the digits and
on IDX files the test writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from heatbath.cli import main
from heatbath.dtm import DTM


def test_train_dtm_digits_writes_checkpoint_and_reports(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "dtm-digits", "--epochs", "1", "--T", "2", "--K", "3", "--samples", "60",
               "--mixing-sweeps", "12", "--records", "6", "--out", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "step 1: tau" in text and "step 2: tau" in text
    m = DTM.load(str(out / "model.npz"))
    assert m.T == 2 and m.graph_.n_visible == 64
    info = json.loads((out / "info.json").read_text())
    assert len(info["mixing"]) == 2


def test_train_dtm_digits_on_idx_files(tmp_path, capsys):
    idx = pytest.importorskip("heatbath.data.idx")
    rng = np.random.default_rng(0)
    imgs = (rng.random((40, 6, 6)) > 0.5).astype(np.uint8) * 255
    labels = rng.integers(0, 3, 40).astype(np.uint8)
    folder = tmp_path / "idx"
    os.makedirs(folder)
    idx.write_idx(str(folder / "train-images-idx3-ubyte"), imgs)
    idx.write_idx(str(folder / "train-labels-idx1-ubyte"), labels)
    rc = main(["train", "dtm-digits", "--data", str(folder), "--epochs", "1", "--T", "2", "--K", "2",
               "--samples", "20", "--mixing-sweeps", "10", "--records", "6", "--batch-size", "16",
               "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 0
    assert "36 visible" in capsys.readouterr().out


def test_train_dtm_digits_bad_graph_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "dtm-digits", "--side", "6", "--epochs", "1", "--out", str(tmp_path), "--no-progress"])
    assert exc.value.code == 2
