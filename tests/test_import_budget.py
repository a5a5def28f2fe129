"""The start-up budget of what agents and git hooks run on every workspace: none of them imports psycopg,
httpx or rich (measured here: 83, 79 and 25 ms of imports before any work). Checked with the interpreter's own import
log (PYTHONPROFILEIMPORTTIME), on the real commands and the real hooks, not with a clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import git, run_tf

HEAVY = {"psycopg", "httpx", "rich"}


def imported(stderr: str) -> set[str]:
    """The top-level packages an import-time log names."""
    names = [line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in names[1:]}  # the first line is the log's header


@pytest.fixture
def profiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # inherited by treefork and the hooks git runs


def _tf(cwd: Path, *args: str) -> set[str]:
    packages = imported(run_tf(cwd, *args, fresh_process=True).err)
    assert "treefork" in packages and "click" in packages, "no import log: the check would pass on anything"
    return packages


def test_agent_commands_import_nothing_heavy(tf_repo: Path, profiled: None) -> None:
    commands = [("sync", "--help"), ("new", "feat", "--json"), ("ls", "--json"), ("url", "feat"), ("sync", "feat")]
    for args in [*commands, ("rm", "feat")]:
        heavy = _tf(tf_repo, *args) & HEAVY
        assert not heavy, f"`treefork {' '.join(args)}` imports {heavy}"


def test_git_hooks_import_nothing_heavy(tf_repo: Path, profiled: None) -> None:
    run_tf(tf_repo, "install")
    path = tf_repo.parent / "viahook"
    added = imported(git(tf_repo, "worktree", "add", "-q", "-b", "viahook", str(path)).stderr)
    assert "treefork" in added, "the post-checkout hook did not run treefork"
    assert not added & HEAVY
    git(tf_repo, "worktree", "remove", "--force", str(path))
    deleted = imported(git(tf_repo, "branch", "-D", "viahook").stderr)
    assert "treefork" in deleted, "the reference-transaction hook did not run treefork"
    assert not deleted & HEAVY


def test_the_check_sees_a_heavy_import(tf_server_repo: Path, profiled: None) -> None:
    assert "rich" in _tf(tf_server_repo, "ls")  # the table is drawn with rich: the log does show it
