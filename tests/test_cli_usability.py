"""The command line as a user meets it: messages that name the option and
say what was expected, outputs checked before any work, help text for every
option, Ctrl-C that keeps the work (and ``--resume``), BLAS threads chosen
by heatbath, ``sample`` and ``evaluate`` on every kind of run."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import heatbath
import numpy as np
import pytest
from heatbath import checkpoint
from heatbath.cli import build_parser, main
from heatbath.diffusion import GaussianDPM


def _usage_error(capsys, argv):
    """(exit status, stderr) of a command line that argparse refuses."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


# ---- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, option, expected",
    [
        (["train", "rbm-digits", "--epochs", "abc"], "--epochs", "expected a whole number"),
        (["train", "rbm-digits", "--ais-betas", "1"], "--ais-betas", ">= 2"),
        (["train", "swissroll", "--time-limit", "-1"], "--time-limit", "> 0"),
        (["train", "swissroll", "--lr", "0"], "--lr", "> 0"),
        (["train", "swissroll", "--T", "1"], "--T", ">= 2"),
        (["ising", "--threads", "0"], "--threads", ">= 1"),
        (["ising", "--beta", "-1"], "--beta", ">= 0"),
        (["ising", "--beta", "nan"], "--beta", "finite"),
        (["train", "dtm-digits", "--records", "1"], "--records", ">= 2"),
        (["sample", "runs/x", "--n", "0"], "--n", ">= 1"),
    ],
)
def test_bad_values_are_refused_naming_the_option(capsys, argv, option, expected):
    code, err = _usage_error(capsys, argv)
    last = err.strip().splitlines()[-1]
    assert code == 2
    assert f"argument {option}" in last and expected in last
    assert "_int" not in last and "_float" not in last  # no internal function names


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"heatbath {heatbath.__version__}"


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _all_parsers():
    root = build_parser()
    out = []
    for name, p in _subparsers(root):
        subs = list(_subparsers(p))
        out.extend((f"{name} {n}", q) for n, q in subs) if subs else out.append((name, p))
    return out


def test_every_option_has_help_and_progress_is_one_flag():
    for name, p in _all_parsers():
        opts = [a for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        for a in opts:
            assert a.help, f"heatbath {name} {a.option_strings[0]} has no help text"
        flags = {s for a in opts for s in a.option_strings}
        if "--quiet" in flags:
            assert "--no-progress" in flags, f"heatbath {name}: --quiet without --no-progress"
            quiet = next(a for a in opts if "--quiet" in a.option_strings)
            assert "--no-progress" in quiet.option_strings  # one option, two spellings


def test_plot_help_speaks_of_the_trainers_own_data():
    helps = {n: next(a.help for a in p._actions if "--plot" in a.option_strings)
             for n, p in _all_parsers() if n in ("train heartbeat", "train digits", "train swissroll")}
    assert "Swiss roll" not in helps["train heartbeat"] and "Swiss roll" not in helps["train digits"]
    assert "heartbeat" not in helps["train swissroll"]


def test_junk_checkpoint_is_not_offered_unsafe_loading(tmp_path):
    junk = tmp_path / "model.npz"
    junk.write_bytes(b"\x80\x04junk that numpy would try to unpickle")
    p = subprocess.run([sys.executable, "-m", "heatbath.cli", "sample", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "not a heatbath checkpoint" in p.stderr
    assert "pickle" not in p.stderr and "Traceback" not in p.stderr


def test_cuda_without_a_gpu_says_so(capsys):
    from heatbath.commands import _args

    problem = _args.gpu_problem()
    if problem is None:
        pytest.skip("a usable GPU is here")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["train", "swissroll", "--device", "cuda", "--steps", "1", "--out", "unused"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "'--device cuda'" in err
    if not _args._nvidia_gpu_present():
        assert "no NVIDIA GPU" in err and "cupy" not in err


# ---- outputs checked before the work --------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "swissroll", "--plot", "/nonexistent/dir/x.png"],
        ["train", "rbm-digits", "--save", "/nonexistent/dir/rbm.npz"],
        ["train", "dtm-digits", "--plot", "/nonexistent/dir/steps.png"],
        ["ising", "--snapshot", "/nonexistent/dir/spins.png"],
        ["sample", "runs/x", "--save", "/nonexistent/dir/s.npy"],
    ],
)
def test_unwritable_outputs_are_refused_before_any_work(capsys, tmp_path, argv):
    if any("plot" in a or "snapshot" in a for a in argv):
        pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    t0 = time.perf_counter()
    code, err = _usage_error(capsys, [*argv, "--out", str(out)] if argv[0] == "train" else argv)
    assert code == 2 and "/nonexistent/dir" in err and "does not exist" in err
    assert not out.exists()  # nothing was trained: the run folder was never made
    assert time.perf_counter() - t0 < 30  # (a refusal, not a training run; generous for a loaded machine)


def test_out_that_is_a_file_and_unknown_image_format_are_refused(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, err = _usage_error(capsys, ["train", "swissroll", "--out", str(f)])
    assert code == 2 and "not a folder" in err
    pytest.importorskip("matplotlib")
    code, err = _usage_error(capsys, ["train", "swissroll", "--plot", str(tmp_path / "x.nosuchformat")])
    assert code == 2 and "unknown image format" in err


# ---- BLAS threads ----------------------------------------------------------------------------


def test_blas_runs_on_one_thread_inside_training_unless_told(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from heatbath import _blas

    if not any(i["user_api"] == "blas" for i in threadpoolctl.threadpool_info()):
        pytest.skip("numpy's BLAS is not visible to threadpoolctl")
    for var in _blas._ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_blas, "_setting", _blas._UNSET)
    seen = []

    def record(model, k, loss):
        seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})

    x = np.random.default_rng(0).standard_normal((64, 2))
    assert heatbath.get_blas_threads() == 1
    GaussianDPM(2, 4, net="rbf", seed=0).fit(x, steps=2, batch_size=8, progress=False, callback=record)
    assert seen == [{1}, {1}]
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert heatbath.get_blas_threads() == 3  # the environment's count is respected
    heatbath.set_blas_threads(None)
    assert heatbath.get_blas_threads() is None
    with pytest.raises(ValueError, match="'n'"):
        heatbath.set_blas_threads(0)


def test_large_rbm_products_use_heatbaths_threads_for_blas(monkeypatch):
    """Products of at least LARGE_WORK multiply-adds (a 784 x 500 RBM's Gibbs
    sweeps over 1,000 chains) run BLAS on heatbath's thread count by default;
    small ones on one thread; the environment and set_blas_threads still rule."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from heatbath import _blas
    from heatbath.ebm import BernoulliRBM

    if not any(i["user_api"] == "blas" for i in threadpoolctl.threadpool_info()):
        pytest.skip("numpy's BLAS is not visible to threadpoolctl")
    for var in _blas._ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_blas, "_setting", _blas._UNSET)
    seen = []
    orig = BernoulliRBM._gibbs_loop

    def spy(self, *a, **kw):
        seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})
        return orig(self, *a, **kw)

    monkeypatch.setattr(BernoulliRBM, "_gibbs_loop", spy)
    rng = np.random.default_rng(0)
    for nv, nh, rows in ((784, 500, 64), (20, 10, 8)):
        r = BernoulliRBM(n_components=nh, random_state=0)
        r.components_ = rng.normal(0, 0.05, (nh, nv)).astype(np.float32)
        r.intercept_hidden_, r.intercept_visible_ = np.zeros(nh, np.float32), np.zeros(nv, np.float32)
        r.n_features_in_ = nv
        with heatbath.threads(2):
            v = (rng.random((rows, nv)) < 0.5).astype(np.float32)
            r.gibbs(v, k=1)
    large = 64 * 784 * 500 >= _blas.LARGE_WORK
    assert large and seen == [{2}, {1}]
    assert _blas.get_blas_threads(_blas.LARGE_WORK - 1) == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert _blas.get_blas_threads(_blas.LARGE_WORK) == 1
    heatbath.set_blas_threads(3)
    assert _blas.get_blas_threads(_blas.LARGE_WORK) == 3


# ---- Ctrl-C and --resume ----------------------------------------------------------------------


def _interrupt_at(monkeypatch, cls, method, when):
    """Make ``cls.method`` send this process a SIGINT (a Ctrl-C) on its
    ``when``-th call, then behave as before."""
    orig = getattr(cls, method)
    calls = {"n": 0}

    def wrapped(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == when:
            os.kill(os.getpid(), signal.SIGINT)
        return orig(self, *a, **k)

    monkeypatch.setattr(cls, method, wrapped)


def test_ctrl_c_saves_the_last_step_and_resume_ends_as_the_uninterrupted_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sr"
    argv = ["train", "swissroll", "--steps", "40", "--T", "6", "--batch-size", "32", "--eval-n", "20",
            "--out", str(out), "--no-progress"]
    _interrupt_at(monkeypatch, GaussianDPM, "_paper_loss", 15)  # Ctrl-C during step 15
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted after step 15 of 40" in err[0] and str(out / "model.npz") in err[0]
    saved = GaussianDPM.load(str(out / "model.npz"))
    assert saved.steps_trained == 15
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    resume = shlex.split(err[0].split("resume with: ", 1)[1])
    assert resume[0] == "heatbath" and resume[-1] == "--resume"
    assert main(resume[1:]) == 0
    resumed = GaussianDPM.load(str(out / "model.npz"))
    # the uninterrupted run, in one go
    ref_out = tmp_path / "ref"
    assert main([*argv[:-3], "--out", str(ref_out), "--no-progress"]) == 0
    ref = GaussianDPM.load(str(ref_out / "model.npz"))
    assert resumed.steps_trained == ref.steps_trained == 40
    for k, v in ref.net.state_dict().items():
        assert np.array_equal(resumed.net.state_dict()[k], v), k
    assert np.array_equal(resumed.betas, ref.betas)


def test_resume_refuses_other_training_options(tmp_path, capsys):
    out = tmp_path / "sr"
    base = ["train", "swissroll", "--T", "4", "--batch-size", "16", "--eval-n", "10", "--out", str(out),
            "--no-progress"]
    assert main([*base, "--steps", "3"]) == 0
    with pytest.raises(SystemExit) as e:
        main([*base, "--steps", "3", "--lr", "0.01", "--resume"])
    assert e.value.code == 2 and "'--lr'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "swissroll", "--resume", "--out", str(tmp_path / "none"), "--no-progress"])
    assert "no checkpoint" in capsys.readouterr().err


def test_ctrl_c_in_dtm_training_keeps_the_last_epoch_and_resumes(tmp_path, capsys, monkeypatch):
    from heatbath.dtm import DTM

    out = tmp_path / "dtm"
    argv = ["train", "dtm-digits", "--epochs", "3", "--T", "2", "--K", "2", "--samples", "20",
            "--mixing-sweeps", "4", "--records", "4", "--out", str(out), "--no-progress"]
    _interrupt_at(monkeypatch, DTM, "_after_epoch", 2)  # Ctrl-C at the end of the second epoch
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert "interrupted after epoch 2 of 3" in err[-1] and "--resume" in err[-1]
    assert DTM.load(str(out / "model.npz")).epochs_trained_ == 2
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0
    assert DTM.load(str(out / "model.npz")).epochs_trained_ == 3
    assert json.loads((out / "info.json").read_text())["status"] == "trained"


def test_ctrl_c_on_a_training_process(tmp_path):
    """A real SIGINT to a real process: exit status 130, one line, a
    checkpoint that loads, and --resume that finishes the run."""
    out = tmp_path / "sr"
    cmd = [sys.executable, "-m", "heatbath.cli", "train", "swissroll", "--steps", "200000", "--T", "4",
           "--batch-size", "16", "--eval-n", "10", "--out", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while not re.search(r"\| *[1-9]\d*/200000", seen) and time.monotonic() < deadline:
            c = p.stderr.read(1)  # the progress bar shows that training runs
            if not c:
                break
            seen += c
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130
    lines = [ln for ln in err.splitlines() if "heatbath" in ln]
    assert len(lines) == 1 and "Traceback" not in err
    m = re.search(r"interrupted after step (\d+) of 200000; saved (\S+); resume with: (.*)$", lines[0])
    assert m, lines[0]
    saved = GaussianDPM.load(m.group(2))
    assert saved.steps_trained == int(m.group(1)) > 0
    assert shlex.split(m.group(3))[-1] == "--resume"


# ---- sample and evaluate on every kind of run ---------------------------------------------------


def test_sample_and_evaluate_a_dtm_run(tmp_path, capsys):
    out = tmp_path / "dtm"
    assert main(["train", "dtm-digits", "--epochs", "1", "--T", "2", "--K", "2", "--samples", "20",
                 "--mixing-sweeps", "4", "--records", "4", "--out", str(out), "--no-progress"]) == 0
    f = tmp_path / "s.npy"
    assert main(["sample", str(out), "--n", "30", "--save", str(f), "--no-progress"]) == 0
    s = np.load(f)
    assert s.shape == (30, 64) and s.dtype == np.uint8 and set(np.unique(s)) <= {0, 1}
    # the samples are the model's own: the same seed through the library gives the same array
    from heatbath.dtm import DTM

    assert np.array_equal(DTM.load(str(out / "model.npz")).sample(30, seed=0), s)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--n", "50", "--no-progress"]) == 0
    assert "MMD^2" in capsys.readouterr().out


def test_sample_plot_shows_the_samples_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sr"
    assert main(["train", "swissroll", "--steps", "3", "--T", "4", "--batch-size", "16", "--eval-n", "10",
                 "--out", str(out), "--no-progress"]) == 0
    a, b, c = (tmp_path / f"{k}.png" for k in "abc")
    main(["sample", str(out), "--n", "50", "--seed", "1", "--plot", str(a), "--no-progress"])
    main(["sample", str(out), "--n", "50", "--seed", "1", "--plot", str(b), "--no-progress"])
    main(["sample", str(out), "--n", "50", "--seed", "2", "--plot", str(c), "--no-progress"])
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()


def test_corrupt_checkpoint_message_stays_one_line(tmp_path):
    bad = tmp_path / "model.npz"
    checkpoint.save(str(bad), "GaussianDPM", {}, {"x": np.zeros(2)})
    p = subprocess.run([sys.executable, "-m", "heatbath.cli", "evaluate", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
