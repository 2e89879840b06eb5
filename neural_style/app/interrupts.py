"""Signals that end a run: SIGINT (Ctrl-C), SIGTERM (``kill``, a job scheduler's time limit) and
SIGHUP (a closing terminal) all end it the same way, so that its best image is kept.

Inside ``signals_as_interrupts()`` each of them raises ``Interrupted``, a ``KeyboardInterrupt``:
the optimisation loop already turns that into an early end that returns its best image. While a
result is being written (``deferred()``) the signals wait, so a signal can never cut a save short;
it arrives as soon as the file is complete. The process then exits with 128 + the signal's number
(130, 143, 129), the shell's convention for a process ended by a signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Iterator

HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A run was ended by a signal; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class SignalState:
    """The first handled signal that arrived, if any."""

    signum: int | None = None

    @property
    def name(self) -> str:
        """``SIGTERM`` and so on; ``SIGINT`` when nothing was recorded (a bare KeyboardInterrupt)."""
        return signal.Signals(self.signum or signal.SIGINT).name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
        return 128 + (self.signum or signal.SIGINT)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[SignalState]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``Interrupted``; the previous handlers
    are restored after it. A signal the process was started ignoring stays ignored (``nohup``
    ignores SIGHUP, so that a run outlives its terminal). Outside the main thread (where Python
    cannot set handlers) nothing changes."""
    state = SignalState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if state.signum is None:
            state.signum = signum
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in HANDLED
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back until the block ends (a result being written);
    one that arrived meanwhile is delivered when it ends. A no-op where signals cannot be
    blocked (Windows)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def held_back(state: SignalState) -> Iterator[None]:
    """Like ``deferred()``, but the signals that arrived during the block are consumed instead of
    delivered: none of them raises, and ``state.signum`` records one (the lowest-numbered when
    several are pending: their order is not known) unless an earlier signal is recorded there. For
    a file being written after which the caller ends the run itself: any number of signals (a
    second Ctrl-C, a SIGTERM after a SIGINT) neither cut the save short nor interrupt what follows.
    Where signals cannot be blocked (Windows), the block runs as under ``deferred()``."""
    consume = hasattr(signal, "sigpending") and threading.current_thread() is threading.main_thread()
    with deferred():
        try:
            yield
        finally:
            for signum in sorted(signal.sigpending() & set(HANDLED)) if consume else ():
                signal.sigwait({signum})  # pending, so it returns at once and the signal is gone
                if state.signum is None:
                    state.signum = signum
