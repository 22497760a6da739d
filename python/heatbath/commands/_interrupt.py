"""Ctrl-C during training: finish the step in progress, keep the work.

Inside ``with StopOnInterrupt() as stop:`` the first SIGINT (Ctrl-C) only
sets ``stop.requested``; the trainer polls it after each completed step (or
epoch), stops there, saves a checkpoint and prints one line that says how
to resume. A second Ctrl-C raises KeyboardInterrupt at once (the command
then exits without saving). Outside the block, Ctrl-C behaves as usual.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from typing import Any, Optional, Sequence


class StopOnInterrupt:
    """A context manager that turns the first Ctrl-C into a stop request.

    Parameters
    ----------
    unit : str
        What the trainer finishes before stopping ("step", "epoch"); named
        in the message printed at the first Ctrl-C when ``announce``.
    announce : bool
        Print that message (worth it where a unit can take seconds).
    """

    def __init__(self, unit: str = "step", announce: bool = False) -> None:
        self.unit, self.announce = unit, announce
        self.requested = False
        self._old: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            sys.stderr.write(f"\nstopping after the current {self.unit} (Ctrl-C again to stop at once, "
                             "without saving)\n")
            sys.stderr.flush()

    def __enter__(self) -> "StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old)
            self._installed = False

    def __call__(self, *args: Any) -> bool:
        """A training callback: True (stop) once Ctrl-C was pressed."""
        return self.requested


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


def resume_command(argv: Optional[Sequence[str]]) -> str:
    """The command line that continues an interrupted run: the one given,
    with ``--resume`` added."""
    args = [a for a in (argv or []) if a != "--resume"]
    return shlex.join(["heatbath", *args, "--resume"])
