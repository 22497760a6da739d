"""Argument types and checks shared by the ``heatbath`` subcommands.

The types raise :class:`argparse.ArgumentTypeError` with a message that says
what was expected, so that argparse prints ``argument --epochs: expected a
whole number >= 1, got 'abc'`` rather than the name of a Python function.
The output checks run while the command line is parsed, before any work, so
that a bad ``--plot`` or ``--save`` path never costs a finished training.
"""

from __future__ import annotations

import argparse
import math
import os


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""

    def check(text: str) -> int:
        v = _int(text)
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return v

    check.__name__ = f"whole number >= {minimum}"
    return check


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def whole_number(text: str) -> int:
    """An argparse type: any whole number (seeds)."""
    return _int(text)


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    return _float(text)


def nonneg_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    v = _float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, > 0."""
    v = _float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return v


# ---- outputs, checked before the work --------------------------------------------------


def _writable_dir(folder: str) -> None:
    """Raise ArgumentTypeError unless ``folder`` is (or can be created as) a
    writable directory."""
    folder = os.path.abspath(folder or ".")
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise argparse.ArgumentTypeError(f"{probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"the folder {probe} is not writable")


def output_file(text: str) -> str:
    """An argparse type: a file to write; its folder must exist and be
    writable, and the path must not be a folder."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file name, got ''")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file name")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"the folder {folder} is not writable")
    if os.path.exists(text) and not os.access(text, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text} exists and is not writable")
    return text


def output_dir(text: str) -> str:
    """An argparse type: a run folder to create or reuse (its parent must
    exist and be writable)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder name, got ''")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    _writable_dir(text)
    return text


def plot_file(text: str) -> str:
    """An argparse type: an image file matplotlib can write (checked: folder,
    matplotlib installed, a format it knows)."""
    text = output_file(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise argparse.ArgumentTypeError(
            "plots need matplotlib: `python -m pip install matplotlib` (or heatbath's `plot` extra)"
        ) from None
    ext = os.path.splitext(text)[1].lower().lstrip(".")
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if ext not in formats:
        raise argparse.ArgumentTypeError(
            f"{text}: unknown image format {ext!r}; use one of {', '.join(sorted(formats))}"
        )
    return text


# ---- shared options ----------------------------------------------------------------------


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress`` (``--quiet`` is accepted as another name for it)."""
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bars (the results are printed all the same)")


def add_seed(p: argparse.ArgumentParser, default: int, what: str = "the random numbers") -> None:
    p.add_argument("--seed", type=whole_number, default=default,
                   help=f"Philox seed of {what} (default {default}); the same seed gives the same result")


def gpu_problem() -> "str | None":
    """Why ``--device cuda`` cannot run here (None when it can), naming the
    first missing piece: a GPU, then heatbath's CUDA module, then cupy."""
    from .. import _backend

    reason = _backend.gpu_unavailable_reason()
    if reason is None:
        return None
    if not _nvidia_gpu_present():
        return "no NVIDIA GPU is visible on this machine; run on the CPU (the default)"
    return reason


def _nvidia_gpu_present() -> bool:
    try:
        if os.listdir("/proc/driver/nvidia/gpus"):
            return True
    except OSError:
        pass
    return any(os.path.exists(f"/dev/nvidia{i}") for i in range(16))


def check_device(device: str, option: str = "--device") -> None:
    """A ValueError naming ``option`` when ``device`` is 'cuda' and cannot run."""
    if device == "cuda":
        problem = gpu_problem()
        if problem is not None:
            label = f"{option} cuda" if option == "--device" else option
            raise ValueError(f"'{label}': {problem}")
