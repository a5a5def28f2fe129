"""Crash injection for the fault suite: TREEFORK_CRASH_AT=<point> kills this process with SIGKILL there,
TREEFORK_SIGNAL_AT=<point>:<SIGINT|SIGTERM> sends it that signal there (^C, a polite kill), and
TREEFORK_FAIL_AT=<point> raises an ordinary error there (to test rollback)."""

from __future__ import annotations

import os
import signal

from treefork.errors import FatalError


def crash_point(point: str) -> None:
    if os.environ.get("TREEFORK_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    at, _, name = os.environ.get("TREEFORK_SIGNAL_AT", "").rpartition(":")
    if at == point and name in ("SIGINT", "SIGTERM"):
        os.kill(os.getpid(), getattr(signal, name))
    if os.environ.get("TREEFORK_FAIL_AT") == point:
        raise FatalError(f"injected failure at {point}")
