"""treefork.locks: exclusive across threads and processes, reentrant within a thread, released by death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from treefork.errors import FatalError
from treefork.locks import FileLock

HOLDER = """
import sys, time
from pathlib import Path
from treefork.locks import FileLock
with FileLock(Path(sys.argv[1]), timeout=10, what="test").held():
    print("held", flush=True)
    time.sleep(60)
"""  # another treefork process: the same kind of lock, flock on Linux, lockf with TREEFORK_PORTABLE=1


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock", timeout=10, what="test")
    events: list[str] = []
    a_holds, b_started = threading.Event(), threading.Event()

    def a() -> None:
        with lock.held():
            events.append("a in")
            a_holds.set()
            b_started.wait(5)
            events.append("a out")

    def b() -> None:
        a_holds.wait(5)
        b_started.set()
        with lock.held():
            events.append("b in")

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert events == ["a in", "a out", "b in"]


def test_reentrant_in_one_thread(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "sub" / "x.lock", timeout=0.2, what="test")  # the directory is made on demand
    with lock.held():
        with lock.held():
            pass
        with lock.held():
            pass
    with lock.held():
        pass


def test_another_process_makes_it_time_out_until_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = FileLock(path, timeout=0.2, what="registry")
        with pytest.raises(FatalError) as err:
            with lock.held():
                pass
        assert "timed out" in err.value.message and "registry lock" in err.value.message and err.value.hint
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with FileLock(path, timeout=5, what="registry").held():  # SIGKILL released it
        pass
