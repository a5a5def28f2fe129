"""Advisory file locks: fcntl.flock with a timeout, reentrant within a thread, exclusive across threads
and processes.

treefork used the filelock package for this; importing it cost about 16 ms on every command, a tenth of
the overhead budget of `treefork new` (docs/benchmarks.md), and treefork is POSIX-only anyway (the
embedded server, reflink probes). flock locks belong to an open file description, so each acquisition
opens its own descriptor: two threads of one process exclude each other, and the kernel drops the lock
when a process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from treefork.errors import FatalError

POLL_SECONDS = 0.005  # holders keep these locks for milliseconds


class FileLock:
    def __init__(self, path: Path, *, timeout: float, what: str) -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self._held = threading.local()  # depth of nested `with lock.held()` in this thread

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        depth = getattr(self._held, "depth", 0)
        if depth:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        fd = self._open()
        try:
            self._acquire(fd)
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
        finally:
            os.close(fd)  # releases the lock

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o644)

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FatalError(
                        f"timed out after {self.timeout:.0f}s waiting for the {self.what} lock {self.path}",
                        hint="another treefork command is running; retry when it ends",
                    ) from None
                time.sleep(POLL_SECONDS)
