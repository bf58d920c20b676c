"""SIGINT / SIGTERM for long commands: finish the current write, then stop.

Inside ``with StopSignals(...) as stop:`` the first SIGINT (Ctrl-C) or
SIGTERM only sets ``stop.received`` and prints one line; the command checks
it at safe points (after a batch is saved; between conversion steps,
``stop.check()`` raises :class:`Stopped`) and exits with
``stop.exit_status`` (128 + the signal number, the shell's convention: 130
for SIGINT, 143 for SIGTERM). A second signal stops at once:
it runs ``on_second`` (a last clean-up) and exits without unwinding. The
handlers are only installed in the main thread (Python's rule) and the
previous ones come back on exit.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """Raised by :meth:`StopSignals.check` at a safe point once a signal was
    received, to unwind work that has no loop of its own to leave (a
    conversion's steps); ``signum`` is the signal. Not an error: the command
    catches it, cleans up and exits with ``StopSignals.exit_status``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """Records SIGINT / SIGTERM instead of dying (see the module docstring).

    program: the name that starts each message. waiting: what the program
    does before it stops, e.g. "stopping after the current batch", printed
    when the first signal arrives if ``verbose`` (for a person at a terminal;
    the program prints its own one-line message when it stops).
    """

    def __init__(self, program: str, waiting: str,
                 on_second: Callable[[], None] | None = None, verbose: bool = True):
        self.program = program
        self.waiting = waiting
        self.on_second = on_second
        self.verbose = verbose
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""

    @property
    def exit_status(self) -> int:
        return 128 + int(self.received or 0)

    def check(self) -> None:
        """Raises :class:`Stopped` if a signal was received, else nothing (a safe point)."""
        if self.received:
            raise Stopped(self.received)

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
            if self.verbose:
                print(f"{self.program}: {signal.Signals(signum).name} received, {self.waiting} "
                      f"(send it again to stop at once)", file=sys.stderr, flush=True)
            return
        if self.on_second is not None:
            try:
                self.on_second()
            except Exception:  # noqa: BLE001 - we are leaving anyway
                pass
        print(f"{self.program}: stopped at once", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def finish_quietly() -> None:
    """For a program whose command has returned its exit status: a first SIGINT
    or SIGTERM while the interpreter exits (JAX, torch and orbax take a moment
    to shut down) no longer turns a finished run into 130 / 143; a second one
    stops the process as usual. Only for the program itself (``reiqa`` and
    ``tools/convert_torch_ckpt.py`` as run from a shell), never for a call
    from Python code, whose handlers are its own."""
    if threading.current_thread() is not threading.main_thread():
        return

    def late(signum, frame):
        signal.signal(signum, signal.SIG_DFL)

    for sig in SIGNALS:
        signal.signal(sig, late)
