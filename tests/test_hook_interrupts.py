"""^C, SIGTERM or SIGKILL at any step of the post-checkout hook that `git worktree add` runs never leaves the
new worktree without an env file pointing at its own database or failing loudly; dotenv's search from the
worktree never reaches the main worktree's `.env` (red-team round 3, finding 15: nested under
`.gemini/worktrees`, racing `treefork new`, `-f` onto a workspace's branch)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values, find_dotenv

from conftest import db_url, git, run_tf
from testing.cli import ls, new
from testing.repo import registry
from testing.server import can_connect

UNPROVISIONED = "unprovisioned.treefork.invalid"


def _git(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", *args], cwd=cwd, env={**env, **extra}, capture_output=True, text=True)


def _own_or_loud(repo: Path, wt: Path, name: str) -> str:
    """The worktree's env file is its own, found first by dotenv's search; its URL is the workspace's own
    database or fails loudly. Returns which."""
    assert (wt / ".env").is_file(), f"{wt} was left without an env file"
    here = os.getcwd()
    os.chdir(wt)
    try:
        assert Path(find_dotenv(usecwd=True)) == wt / ".env", "dotenv must find the worktree's own file"
    finally:
        os.chdir(here)
    url = dotenv_values(wt / ".env")["DATABASE_URL"] or ""
    if UNPROVISIONED in url:
        return "loud"
    row = ls(repo).get(name)
    assert row is not None and row["db_branch"] and url != db_url(repo) and can_connect(url)
    return "own"


POINTS = ["post-checkout:after-placeholder", "new:after-db", "new:after-env", "new:after-registry"]


@pytest.mark.parametrize("how", ["TREEFORK_CRASH_AT", "SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", POINTS)
def test_a_hook_stopped_at_any_step_leaves_an_env_file_of_its_own_or_a_loud_one(
    tf_server_repo: Path, point: str, how: str
) -> None:
    run_tf(tf_server_repo, "install")
    wt = tf_server_repo / ".gemini" / "worktrees" / "x"  # nested: dotenv's search would reach main's .env
    wt.parent.mkdir(parents=True)
    inject = {"TREEFORK_CRASH_AT": point} if how == "TREEFORK_CRASH_AT" else {"TREEFORK_SIGNAL_AT": f"{point}:{how}"}
    _git(tf_server_repo, "worktree", "add", "-q", "-b", "x", str(wt), **inject)
    assert wt.is_dir()
    got = _own_or_loud(tf_server_repo, wt, "x")
    # killed once its env file is written, it keeps it (its own database; `sync` finishes the record)
    assert got == ("own" if point == "new:after-registry" else "loud") or point == "new:after-env"
    r = run_tf(wt, "sync", check=False)  # what the loud URL's name says to run
    assert r.rc == 0, r.err
    assert _own_or_loud(tf_server_repo, wt, "x") == "own"


def test_a_worktree_racing_treefork_new_for_its_branch_gets_a_loud_env_file(tf_server_repo: Path) -> None:
    """`treefork new race &` then `git worktree add -b race .gemini/worktrees/race`: new is still making its
    workspace (its record says so) when git's hook runs, so the hook provisioned nothing, and the app found
    main's `.env`."""
    run_tf(tf_server_repo, "install")
    reg = registry(tf_server_repo)
    elsewhere = tf_server_repo.parent / "app.worktrees" / "race"
    reg["workspaces"]["race"] = {
        "name": "race",
        "branch": "race",
        "path": str(elsewhere),
        "parent": None,
        "status": "creating",
        "origin": "new",
        "pid": os.getpid(),  # alive: a `treefork new` at work
    }
    (tf_server_repo / ".git" / "treefork" / "registry.json").write_text(json.dumps(reg))
    wt = tf_server_repo / ".gemini" / "worktrees" / "race"
    wt.parent.mkdir(parents=True)
    r = _git(tf_server_repo, "worktree", "add", "-q", "-b", "race", str(wt))
    assert _own_or_loud(tf_server_repo, wt, "race") == "loud"
    assert "NOT provisioned" in r.stderr and "being created by process" in r.stderr


def test_worktree_add_force_onto_a_workspaces_branch_says_it_is_not_provisioned(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    h1 = new(tf_server_repo, "h1")
    dup = tf_server_repo.parent / "dup"
    r = _git(tf_server_repo, "worktree", "add", "-f", str(dup), "h1")
    assert "is ready" not in r.stderr, "no 'ready … env file' for a file that does not exist"
    assert "NOT provisioned" in r.stderr and "branch h1 is workspace 'h1'" in r.stderr
    assert _own_or_loud(tf_server_repo, dup, "dup") == "loud"
    assert db_url(h1) != db_url(dup) and ls(tf_server_repo)["h1"]["path"] == str(h1)
    git(tf_server_repo, "worktree", "remove", "--force", str(dup))
