"""One step running in a thread while the caller does another: `new` checks out the worktree while the
database clones, and connects to PostgreSQL while it records its intent. Both sides spend their time
in git, libpq or the server, outside Python's GIL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    def __init__(self, fn: Callable[[], T], *, name: str) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        # daemon: a caller that fails before asking for the result must not wait for it to exit
        self._thread = threading.Thread(target=self._run, args=(fn,), name=f"treefork-{name}", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._value = fn()
        except BaseException as e:  # handed to whoever asks for the result
            self._error = e

    def result(self) -> T:
        """Wait for the step; its value, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
