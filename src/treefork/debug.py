"""Crash injection for the fault suite: TREEFORK_CRASH_AT=<point> kills this process with SIGKILL there,
TREEFORK_SIGNAL_AT=<point>:<SIGINT|SIGTERM> sends it that signal there (^C, a polite kill), and
TREEFORK_FAIL_AT=<point> raises an ordinary error there (to test rollback).

TREEFORK_TIMING=<file> appends a line to that file at every crash point and every mark: the process, the thread,
the point, the milliseconds since this module was loaded and since the previous line of this process, and the
time of day (to place the process's start and exit, measured outside, around them). What a benchmark reads to
split a command's time between its steps (docs/benchmarks.md)."""

from __future__ import annotations

import os
import signal
import threading
import time

from treefork.errors import FatalError

_STARTED = time.perf_counter()
_last = [_STARTED]


def crash_point(point: str) -> None:
    mark(point)
    if os.environ.get("TREEFORK_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    at, _, name = os.environ.get("TREEFORK_SIGNAL_AT", "").rpartition(":")
    if at == point and name in ("SIGINT", "SIGTERM"):
        os.kill(os.getpid(), getattr(signal, name))
    if os.environ.get("TREEFORK_FAIL_AT") == point:
        raise FatalError(f"injected failure at {point}")


def mark(point: str) -> None:
    """A step's end, for TREEFORK_TIMING (nothing happens without it)."""
    where = os.environ.get("TREEFORK_TIMING")
    if not where:
        return
    now = time.perf_counter()
    since, _last[0] = now - _last[0], now
    thread = threading.current_thread().name
    line = f"{os.getpid()} {thread} {point} {(now - _STARTED) * 1000:.1f} +{since * 1000:.1f} {time.time():.4f}\n"
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
