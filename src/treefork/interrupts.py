"""Signals that end a command the way ^C does. A closed terminal (SIGHUP) or a supervisor's SIGTERM must
run the same rollback as ^C, and a step that must not be cut in half (a rollback, a data directory swap)
ignores all three until it is done."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the command was, as ^C raises KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def like_interrupts() -> Iterator[None]:
    """Inside: SIGTERM and SIGHUP raise Stopped (a KeyboardInterrupt), so `except BaseException` rollbacks run."""
    with _handlers({signal.SIGTERM: _raise_stopped, signal.SIGHUP: _raise_stopped}):
        yield


@contextlib.contextmanager
def ignored() -> Iterator[None]:
    """Inside: ^C, SIGTERM and SIGHUP are ignored (a rollback or a swap finishes whatever arrives)."""
    with _handlers(dict.fromkeys(STOPS, signal.SIG_IGN)):
        yield


@contextlib.contextmanager
def _handlers(wanted: dict[signal.Signals, object]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    before = {s: signal.signal(s, h) for s, h in wanted.items()}  # type: ignore[arg-type]
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
