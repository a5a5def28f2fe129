"""treefork.platform's portable fallbacks (TREEFORK_PORTABLE=1, what macOS offers without its own calls) give the
answers Linux's own calls give, or conservative ones: a fork, a lock between processes and threads, a process's
liveness, disk use. And no module but platform.py makes an OS-specific call."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, run_tf
from testing.cli import new
from testing.server import cluster_of, home
from treefork import platform, procinfo
from treefork.backends.local import extents, fork, ports
from treefork.errors import FatalError
from treefork.locks import FileLock

SRC = Path(__file__).resolve().parent.parent / "src" / "treefork"


@pytest.fixture
def portable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platform.PORTABLE_ENV, "1")
    assert not platform.native()


# ---- files ---------------------------------------------------------------------------------------------------
def _files(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


def _data_dir(root: Path) -> Path:
    data = root / "data"
    files = (("PG_VERSION", 3), ("base/5/1259", 3 << 20 | 17), ("global/pg_control", 8192), ("pg_wal/x", 0))
    for rel, size in files:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(os.urandom(size))
    return data


def test_the_portable_copy_takes_the_same_files_without_copy_file_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _data_dir(tmp_path)
    fork.copy_data_dir(src, tmp_path / "native", fork.Copier())
    monkeypatch.setenv(platform.PORTABLE_ENV, "1")
    monkeypatch.delattr(os, "copy_file_range")  # as on macOS: Python has it on Linux only
    copier = fork.Copier()
    fork.copy_data_dir(src, tmp_path / "portable", copier)
    assert copier.method == fork.COPY
    expected = {rel: data for rel, data in _files(src).items() if not rel.startswith("pg_wal/")}  # WAL: replayed
    assert _files(tmp_path / "portable") == _files(tmp_path / "native") == expected
    with open(src / "base/5/1259", "rb") as s, open(tmp_path / "part", "wb") as d:
        assert platform.copy_range(s.fileno(), d.fileno(), 5) == 5  # no more than asked
    assert (tmp_path / "part").read_bytes() == (src / "base/5/1259").read_bytes()[:5]


def test_disk_use_without_extent_maps_counts_every_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data_dir(tmp_path)
    blocks = sum(p.lstat().st_blocks * 512 for p in data.rglob("*") if p.is_file())
    native = extents.tree_unshared_bytes(str(data))
    monkeypatch.setenv(platform.PORTABLE_ENV, "1")
    assert extents.tree_unshared_bytes(str(data)) == blocks
    assert native == blocks  # nothing here is shared with another file, whatever the filesystem
    with open(data / "PG_VERSION", "rb") as f:
        assert platform.unshared_extents(f.fileno()) is None


@pytest.mark.skipif(not platform.native(), reason="compares the fallbacks with Linux's own calls")
def test_a_fork_made_the_portable_way_has_the_parents_rows(tf_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    with psycopg.connect(root_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
    monkeypatch.setenv(platform.PORTABLE_ENV, "1")
    monkeypatch.delattr(os, "copy_file_range")
    wt = new(tf_repo, "portable")
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT count(*), sum(x) FROM t").fetchone() == (1000, 500500)
    conf = {}
    for name in ("<root>", "portable"):
        rec = cluster_of(tf_repo, name)
        assert rec is not None
        conf[name] = (home() / "clusters" / rec["id"] / "data" / "treefork.conf").read_text()
    assert "recovery_init_sync_method = syncfs" in conf["<root>"]  # started natively, by init
    assert "recovery_init_sync_method" not in conf["portable"]  # PostgreSQL's default: fsync file by file


# ---- locks ---------------------------------------------------------------------------------------------------
HOLDER = """
import sys, time
from pathlib import Path
from treefork.locks import FileLock
with FileLock(Path(sys.argv[1]), timeout=10, what="test").held():
    print("held", flush=True)
    time.sleep(60)
"""
PROBE = """
import sys
from pathlib import Path
from treefork.errors import FatalError
from treefork.locks import FileLock
try:
    with FileLock(Path(sys.argv[1]), timeout=0.2, what="test").held():
        print("acquired")
except FatalError:
    print("timed out")
"""


def _probe(path: Path) -> str:
    """Whether another process (as portable as this one) can take the lock now."""
    return subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True).stdout.strip()


def test_a_portable_lock_held_by_another_process_times_out_until_it_dies(tmp_path: Path, portable: None) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FatalError, match="timed out"):
            with FileLock(path, timeout=0.2, what="test").held():
                pass
    finally:
        holder.kill()
        holder.wait()
    with FileLock(path, timeout=5, what="test").held():  # its death released it
        assert _probe(path) == "timed out"
    assert _probe(path) == "acquired"


def test_a_thread_that_waits_in_vain_does_not_release_the_portable_lock_of_another(
    tmp_path: Path, portable: None
) -> None:
    """POSIX record locks belong to the process, and closing any descriptor of the file drops them: a second
    thread must never open its own while the first holds the lock."""
    path = tmp_path / "x.lock"
    failed: list[str] = []

    def second() -> None:
        try:
            with FileLock(path, timeout=0.1, what="test").held():
                failed.append("the second thread got the lock")
        except FatalError:
            pass

    with FileLock(path, timeout=5, what="test").held():
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(10)
        assert failed == []
        assert _probe(path) == "timed out"  # still held against other processes
    assert _probe(path) == "acquired"


# ---- processes -----------------------------------------------------------------------------------------------
def _liveness() -> list[bool]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = platform.process_start_time(child.pid)
    answers = [platform.process_alive(os.getpid()), procinfo.same_process(child.pid, started)]
    child.kill()
    child.wait()  # reaped: the pid names no process
    return [*answers, platform.process_alive(child.pid), procinfo.same_process(child.pid, started)]


def test_process_liveness_is_the_same_without_process_information(monkeypatch: pytest.MonkeyPatch) -> None:
    native = _liveness()
    monkeypatch.setenv(platform.PORTABLE_ENV, "1")
    assert _liveness() == native == [True, True, False, False]
    assert not platform.can_inspect_processes() and platform.process_ids() == []
    assert platform.process_start_time(os.getpid()) is None and platform.process_cwd_or_none(os.getpid()) is None
    assert procinfo.pids_in(os.getcwd()) == []


def test_who_holds_a_port_is_a_conservative_answer_without_process_information(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        if platform.native():
            assert ports.holder_or_none(port) == f"pid {os.getpid()} ({platform.process_name(os.getpid())})"
        monkeypatch.setenv(platform.PORTABLE_ENV, "1")
        assert ports.holder_or_none(port) == "another program (one this user cannot see; `ss -ltnp` as root names it)"
        assert ports.listens_everywhere(os.getpid(), port) is None


# ---- users ---------------------------------------------------------------------------------------------------
def test_user_lookups() -> None:
    assert platform.user_ids_or_none("root") == (0, 0)
    assert platform.user_ids_or_none("no-such-user-treefork") is None
    assert platform.user_name(0) == "root"
    assert platform.user_name(2**31 - 2) == f"uid {2**31 - 2}"


# ---- the one home --------------------------------------------------------------------------------------------
OS_MODULES = {"fcntl", "pwd", "grp", "msvcrt", "winreg", "termios", "resource"}
OS_CALLS = {"copy_file_range", "sendfile", "ioctl", "flock", "lockf", "getpwnam", "getpwuid", "syncfs"}


def _os_specific(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in OS_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in OS_MODULES:
            found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr in OS_CALLS:
            found.append(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/proc"):
            found.append(node.value)
        elif isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.Constant) and str(v.value).startswith("/proc") for v in node.values[:1]
        ):
            found.append("/proc/...")
    return found


def test_no_module_but_platform_makes_an_os_specific_call() -> None:
    calls = {
        str(path.relative_to(SRC)): found
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "platform.py" and (found := _os_specific(path))
    }
    assert calls == {}, "move these into treefork/platform.py, with a portable fallback"
    assert _os_specific(SRC / "platform.py")  # the check sees them where they are
