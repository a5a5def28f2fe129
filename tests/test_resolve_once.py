"""Resolve once (docs STYLE, "resolve once, pass records down"): a command reads the registry once, then once
for each lock it takes to change it, and takes none that changes nothing; a secret is read under the lock once
a command. Counted on the real commands, in-process, by wrapping the registry's read and its lock."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import git, run_tf
from testing.cli import new
from treefork import locks, state


@dataclass
class Counts:
    reads: list[str] = field(default_factory=list)  # where each registry read came from
    locked_reads: int = 0  # reads with the registry's lock held
    locks: list[str] = field(default_factory=list)  # each time the registry's lock was taken (outermost)
    writes: int = 0  # registry.json written

    def clear(self) -> None:
        self.reads.clear()
        self.locks.clear()
        self.writes = self.locked_reads = 0

    @property
    def transactions(self) -> list[str]:
        return [w for w in self.locks if w.startswith("state.py:transaction")]

    @property
    def secret_locks(self) -> list[str]:
        return [w for w in self.locks if w.startswith("state.py:secret")]

    def report(self) -> str:
        return "\n".join(["reads:", *self.reads, "locks:", *self.locks, f"writes: {self.writes}"])


def _where() -> str:
    frames = [f for f in traceback.extract_stack()[:-3] if "/treefork/" in f.filename]
    return " < ".join(f"{Path(f.filename).name}:{f.name}" for f in reversed(frames[-4:]))


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    c = Counts()
    read_text, held, write = state.Registry._read_text, locks.FileLock.held, state.atomic_write_text

    def counted_read(self: state.Registry) -> str | None:
        c.reads.append(_where())
        c.locked_reads += bool(getattr(self._lock._held, "depth", 0))
        return read_text(self)

    @contextlib.contextmanager
    def counted_held(self: locks.FileLock) -> Iterator[None]:
        if self.what == "registry" and not getattr(self._held, "depth", 0):
            c.locks.append(_where())
        with held(self):
            yield

    def counted_write(path: Path, text: str, *, mode: int = 0o600) -> bool:
        c.writes += path.name == "registry.json"
        return write(path, text, mode=mode)

    monkeypatch.setattr(state.Registry, "_read_text", counted_read)
    monkeypatch.setattr(locks.FileLock, "held", counted_held)
    monkeypatch.setattr(state, "atomic_write_text", counted_write)
    return c


def _expect_once_per_lock(c: Counts) -> None:
    assert len(c.reads) - c.locked_reads == 1, c.report()  # the command's own reading
    assert c.locked_reads == len(c.transactions), c.report()  # and one for each change
    assert c.writes == len(c.transactions), c.report()  # no lock that changes nothing
    assert len(c.secret_locks) <= 2, c.report()  # the server's admin URL and the roles' password, once each


def test_new_reads_the_registry_once_per_lock(tf_server_repo: Path, counts: Counts) -> None:
    run_tf(tf_server_repo, "new", "a", "--json")
    _expect_once_per_lock(counts)
    assert len(counts.transactions) == 5, counts.report()  # intent, worktree, database, env file, ready


def test_merge_reads_the_registry_once_per_lock(tf_server_repo: Path, counts: Counts) -> None:
    (tf_server_repo / "treefork.toml").write_text('migrate = "git --version"\n')
    git(tf_server_repo, "add", "treefork.toml")
    git(tf_server_repo, "commit", "-q", "-m", "migrate")
    a = new(tf_server_repo, "a")
    git(a, "commit", "-q", "--allow-empty", "-m", "a1")
    counts.clear()
    run_tf(tf_server_repo, "merge", "a")
    _expect_once_per_lock(counts)


def test_ls_reads_the_registry_once_and_takes_no_lock(tf_server_repo: Path, counts: Counts) -> None:
    new(tf_server_repo, "a")
    counts.clear()
    run_tf(tf_server_repo, "ls", "--json")
    assert len(counts.reads) == 1 and counts.locked_reads == 0, counts.report()
    assert counts.transactions == [] and counts.writes == 0, counts.report()
