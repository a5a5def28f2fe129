"""Advisory file locks (platform.try_lock: flock on Linux) with a timeout, reentrant within a thread, exclusive
across threads and processes.

treefork used the filelock package for this; importing it cost about 16 ms on every command, a tenth of
the overhead budget of `treefork new` (docs/benchmarks.md). flock locks belong to an open file description,
so each acquisition opens its own descriptor: two threads of one process exclude each other, and the kernel
drops the lock when a process dies, even by SIGKILL. Where locks belong to the process instead (the portable
fallback's POSIX record locks), a thread first takes the path's in-process lock, so the process's threads take
turns and never hold two descriptors of one lock file.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from treefork import platform
from treefork.errors import FatalError

POLL_SECONDS = 0.005  # holders keep these locks for milliseconds
_IN_PROCESS: dict[str, threading.Lock] = {}  # a lock file's path: its threads' turn (locks_belong_to_process)
_IN_PROCESS_GUARD = threading.Lock()


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
        deadline = time.monotonic() + self.timeout
        turn = self._take_turn(deadline) if platform.locks_belong_to_process() else None
        try:
            fd = self._open()
            try:
                self._acquire(fd, deadline)
                self._held.depth = 1
                try:
                    yield
                finally:
                    self._held.depth = 0
            finally:
                os.close(fd)  # releases the lock
        finally:
            if turn is not None:
                turn.release()

    def _take_turn(self, deadline: float) -> threading.Lock:
        with _IN_PROCESS_GUARD:
            turn = _IN_PROCESS.setdefault(os.path.abspath(self.path), threading.Lock())
        if not turn.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise self._timed_out()
        return turn

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o644)

    def _acquire(self, fd: int, deadline: float) -> None:
        while not platform.try_lock(fd):
            if time.monotonic() >= deadline:
                raise self._timed_out()
            time.sleep(POLL_SECONDS)

    def _timed_out(self) -> FatalError:
        return FatalError(
            f"timed out after {self.timeout:.0f}s waiting for the {self.what} lock {self.path}",
            hint="another treefork command is running; retry when it ends",
        )
