"""Claude Code 2.1.332 removes its built-in worktrees itself with every git hook off (CONTRACTS C2): it unlocks
(or, killed halfway, leaves the lock), deletes the folder, then `git branch -D`, which git refuses while the
worktree is still registered. treefork never hears of it: `gc` and the next `ls` finish the removal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import db_url, git, run_tf
from testing.cli import gc_dry, ls
from testing.server import can_connect


def _claude_builtin_worktree(repo: Path, name: str, *, commit: bool = False) -> Path:
    """What Claude does without a WorktreeCreate hook: `git worktree add` with hooks off, then a lock; the
    workspace comes from a later `treefork sync` in it (as `doctor --fix` would)."""
    wt = repo / ".claude" / "worktrees" / name
    git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", "-b", f"worktree-{name}", str(wt))
    git(repo, "worktree", "lock", "--reason", f"claude session {name} (pid 1)", str(wt))
    run_tf(wt, "sync", "--quiet")
    if commit:
        (wt / "work.txt").write_text("work\n")
        git(wt, "add", "work.txt")
        git(wt, "commit", "-q", "-m", "work")
    return wt


def _claude_removes(repo: Path, wt: Path, *, unlock: bool) -> None:
    if unlock:
        git(repo, "worktree", "unlock", str(wt))
    import shutil

    shutil.rmtree(wt)
    branch = f"worktree-{wt.name}"
    refused = git(repo, "-c", "core.hooksPath=/dev/null", "branch", "-D", branch, check=False)
    assert refused.returncode != 0 or branch not in git(repo, "branch", "--list").stdout


@pytest.mark.parametrize("unlock", [True, False], ids=["unlocked", "left-locked"])
def test_ls_finishes_a_removal_claude_did_with_hooks_off(tf_server_repo: Path, *, unlock: bool) -> None:
    wt = _claude_builtin_worktree(tf_server_repo, "x")
    url = db_url(wt)
    assert ls(tf_server_repo)["worktree-x"]["status"] == "ready" and can_connect(url)
    _claude_removes(tf_server_repo, wt, unlock=unlock)
    assert "worktree-x" not in ls(tf_server_repo)  # the next command that lists finishes it
    assert not can_connect(url)
    assert str(wt) not in git(tf_server_repo, "worktree", "list").stdout
    assert "worktree-x" not in git(tf_server_repo, "branch", "--list").stdout  # what Claude meant to delete
    assert gc_dry(tf_server_repo) == []


def test_gc_finishes_it_and_keeps_a_branch_with_commits(tf_server_repo: Path) -> None:
    wt = _claude_builtin_worktree(tf_server_repo, "y", commit=True)
    url = db_url(wt)
    _claude_removes(tf_server_repo, wt, unlock=False)
    doctor = json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)["checks"]
    found = {c["name"]: c for c in doctor}
    assert found["claude removals"]["hint"] == "treefork gc" and str(wt) in found["claude removals"]["message"]
    assert found["worktrees without a workspace"]["level"] == "ok"
    assert [a["name"] for a in gc_dry(tf_server_repo)] == ["worktree-y"]
    run_tf(tf_server_repo, "gc")
    assert not can_connect(url) and gc_dry(tf_server_repo) == []
    assert str(wt) not in git(tf_server_repo, "worktree", "list").stdout
    # its commit is on no other branch: the branch stays, for the user to merge or delete
    assert git(tf_server_repo, "log", "-1", "--format=%s", "worktree-y").stdout.strip() == "work"


def test_a_kept_claude_worktree_keeps_its_database(tf_server_repo: Path) -> None:
    """Keep in Claude's exit dialog: the worktree stays locked and present; gc and ls leave it alone."""
    wt = _claude_builtin_worktree(tf_server_repo, "k")
    url = db_url(wt)
    run_tf(tf_server_repo, "gc")
    assert ls(tf_server_repo)["worktree-k"]["worktree"] == "present" and can_connect(url) and wt.is_dir()
