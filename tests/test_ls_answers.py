"""`ls` keeps what git said of commits, and the migration collisions, in the registry's directory
(workspace/answers.py): a listing of an unchanged repository asks git no question twice, and every change that
moves an answer (a commit on a branch or on the parent, a new migration file, a workspace removed) shows at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from testing.cli import ls, new
from treefork import proc


def _commit(where: Path, name: str) -> None:
    (where / "app" / "migrations").mkdir(parents=True, exist_ok=True)
    (where / "app" / "migrations" / name).write_text("")
    git(where, "add", ".")
    git(where, "commit", "-q", "-m", name)


def _collides(rows: dict, name: str) -> list[list[str]]:
    return sorted(sorted(c["workspaces"]) for c in rows[name]["collisions"])


def test_ls_answers_follow_every_change(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    _commit(repo, "0001_initial.py")
    a, b = new(repo, "a"), new(repo, "b")
    _commit(a, "0002_a.py")
    rows = ls(repo)
    assert (rows["a"]["ahead"], rows["a"]["behind"], rows["a"]["data_ahead_of_code"]) == (1, 0, False)
    assert _collides(rows, "a") == []
    _commit(b, "0002_b.py")  # b's head moved: a new collision
    rows = ls(repo)
    assert _collides(rows, "a") == [["a", "b"]] and (rows["b"]["ahead"], rows["b"]["behind"]) == (1, 0)
    git(repo, "commit", "-q", "--allow-empty", "-m", "root1")  # the parent's HEAD moved: both are behind
    rows = ls(repo)
    assert (rows["a"]["ahead"], rows["a"]["behind"]) == (1, 1) and _collides(rows, "b") == [["a", "b"]]
    git(b, "reset", "-q", "--hard", "HEAD~1")  # b's migration is gone again
    rows = ls(repo)
    assert _collides(rows, "a") == [] and (rows["b"]["ahead"], rows["b"]["behind"]) == (0, 1)
    _commit(b, "0002_b.py")
    assert _collides(ls(repo), "a") == [["a", "b"]]
    git(repo, "switch", "-q", "-c", "other")
    _commit(repo, "0002_root.py")
    git(repo, "switch", "-q", "main")
    assert _collides(ls(repo), "a") == [["a", "b"]]
    git(repo, "switch", "-q", "other")  # no branch moved; the main worktree's HEAD did: the root gained 0002 too
    assert _collides(ls(repo), "a") == [["a", "b"], ["a", "root"]]


def _two_colliding_migrations(repo: Path) -> dict[str, Any]:
    """Workspaces a and b each adding a 0002 migration; the first listing of them."""
    _commit(repo, "0001_initial.py")
    a, b = new(repo, "a"), new(repo, "b")
    _commit(a, "0002_a.py")
    _commit(b, "0002_b.py")
    return ls(repo)


def test_an_unchanged_repository_asks_git_nothing_twice(tf_server_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tf_server_repo
    first = _two_colliding_migrations(repo)
    asked: list[str] = []
    run = proc.run

    def recorded(*args: str, **kw: object) -> proc.Result:
        if args[0] == "git":
            asked.append(args[1])
        return run(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(proc, "run", recorded)
    assert ls(repo) == first
    assert not {"rev-list", "merge-base", "diff-tree", "show"} & set(asked), asked
    assert asked.count("for-each-ref") == 1, asked


def test_a_damaged_answers_file_is_asked_of_git_again(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    first = _two_colliding_migrations(repo)
    file = repo / ".git" / "treefork" / "answers.json"
    data = json.loads(file.read_text())
    data["pairs"] = {k: "zz" for k in data["pairs"]}
    data["collisions"]["found"] = "zz"
    file.write_text(json.dumps(data))
    assert ls(repo) == first
    file.write_text("{not json")
    assert ls(repo) == first
