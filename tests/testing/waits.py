"""The tests' one bounded wait: for background work (an agent's hook, a process reaching a step). A wait that
runs out is a failure that says what never happened; time itself is never asserted."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_until(
    ready: Callable[[], object],
    what: str = "the condition",
    *,
    timeout: float = 60,
    interval: float = 0.05,
    process: subprocess.Popen | None = None,
) -> None:
    """Poll ready() until it is true. Fails when timeout runs out, or when process (the one doing the work)
    ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None and not ready():
            raise AssertionError(f"{what} never happened: the process ended ({process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened within {timeout:.0f}s")
        time.sleep(interval)
