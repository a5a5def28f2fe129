"""Code and data start from the same place: a workspace's database is forked from its parent's current data,
so its code starts from the parent's HEAD. A base the user asks for (`new --base`, Claude's
`worktree.baseRef`: tests/test_claude_hooks.py) is honoured, and when the data is ahead of that code it is said
at creation, in `ls --json` and by `doctor`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, run_tf
from testing.cli import assert_one_line_error, ls, new


def _commit(where: Path, name: str) -> str:
    (where / name).write_text(name + "\n")
    git(where, "add", name)
    git(where, "commit", "-q", "-m", name)
    return git(where, "rev-parse", "HEAD").stdout.strip()


def test_a_workspace_starts_from_its_parents_head(tf_server_repo: Path) -> None:
    head = _commit(tf_server_repo, "migration_0002.txt")  # an unpushed merge, say: main's data has it
    wt = new(tf_server_repo, "a")
    assert git(wt, "rev-parse", "HEAD").stdout.strip() == head
    row = ls(tf_server_repo)["a"]
    assert row["code_base"] == head and row["data_ahead_of_code"] is False
    child_head = _commit(wt, "in_a.txt")
    b = Path(json.loads(run_tf(tf_server_repo, "new", "b", "--from", "a", "--json").out)["path"])
    assert git(b, "rev-parse", "HEAD").stdout.strip() == child_head, "a child starts from its parent's HEAD"


def test_new_base_behind_the_data_says_so_everywhere(tf_server_repo: Path) -> None:
    old = git(tf_server_repo, "rev-parse", "HEAD").stdout.strip()
    newer = _commit(tf_server_repo, "migration_0002.txt")
    r = run_tf(tf_server_repo, "new", "old-code", "--base", old)
    wt = Path(r.out.strip())
    assert git(wt, "rev-parse", "HEAD").stdout.strip() == old, "the base asked for is honoured"
    assert "warning: workspace old-code: its code starts at" in r.err and "the data is ahead of the code" in r.err
    assert f"merge {newer[:12]}" in r.err
    row = ls(tf_server_repo)["old-code"]
    assert row["code_base"] == old and row["data_ahead_of_code"] is True
    doctor = json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)
    check = next(c for c in doctor["checks"] if c["name"] == "code and data")
    assert check["level"] == "warn" and "old-code" in check["message"] and newer[:12] in check["hint"]
    git(wt, "merge", "-q", "--ff-only", newer)  # the code catches up: nothing to say any more
    assert ls(tf_server_repo)["old-code"]["data_ahead_of_code"] is False
    doctor = json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)
    assert next(c for c in doctor["checks"] if c["name"] == "code and data")["level"] == "ok"


def test_new_base_ahead_or_equal_is_quiet_and_an_unknown_base_is_refused(tf_server_repo: Path) -> None:
    head = git(tf_server_repo, "rev-parse", "HEAD").stdout.strip()
    r = run_tf(tf_server_repo, "new", "same", "--base", "main")
    assert "ahead of the code" not in r.err and ls(tf_server_repo)["same"]["code_base"] == head
    r = run_tf(tf_server_repo, "new", "nope", "--base", "no-such-ref", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "--base no-such-ref: no such commit")
    assert "nope" not in ls(tf_server_repo)
    assert git(tf_server_repo, "branch", "--list", "nope").stdout.strip() == ""
