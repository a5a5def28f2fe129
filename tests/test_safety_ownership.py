"""Data safety: treefork never drops or deletes what is still in use, or what it does not own.

Every data-loss test writes a row through the workspace's DATABASE_URL first and reads it back after.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from conftest import as_sample_spells, db_url, git, run_tf
from testing.cli import assert_one_line_error, gc_dry, ls, new
from testing.repo import branches, registry, worktree_paths
from testing.server import cluster_of, home


def write_row(url: str, value: str = "precious") -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS keep (v text)")
        conn.execute("INSERT INTO keep VALUES (%s)", (value,))


def read_rows(url: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM keep ORDER BY v")]


def test_gc_keeps_database_of_moved_worktree(tf_server_repo: Path, tmp_path: Path) -> None:
    wt = new(tf_server_repo, "moved")
    url = db_url(wt)
    write_row(url)
    admin_id = registry(tf_server_repo)["workspaces"]["moved"]["worktree_id"]
    assert (tf_server_repo / ".git" / "worktrees" / admin_id / "gitdir").read_text().strip() == str(
        wt.resolve() / ".git"
    )
    target = tmp_path / "elsewhere" / "moved"
    target.parent.mkdir()
    git(tf_server_repo, "worktree", "move", str(wt), str(target))
    assert as_sample_spells(run_tf(target, "url").out.strip()) == url  # found from inside the moved worktree
    run_tf(tf_server_repo, "new", "moved")  # a re-run finishes it where it is now
    run_tf(target, "sync")
    assert gc_dry(tf_server_repo) == []
    run_tf(tf_server_repo, "gc")
    assert read_rows(db_url(target)) == ["precious"]
    row = ls(tf_server_repo)["moved"]
    assert row["worktree"] == "present" and Path(row["path"]).resolve() == target.resolve()


def test_gc_keeps_database_of_worktree_moved_by_hand_then_repaired(tf_server_repo: Path, tmp_path: Path) -> None:
    wt = new(tf_server_repo, "mv-repair")
    url = db_url(wt)
    write_row(url)
    target = tmp_path / "by-hand"
    shutil.move(str(wt), str(target))
    # before the repair git lists it as prunable: gc must keep it and say how to fix it
    r = run_tf(tf_server_repo, "gc", "--json")
    assert json.loads(r.out)["actions"] == [] and "git worktree repair" in r.err
    git(target, "worktree", "repair")
    run_tf(tf_server_repo, "gc")
    assert read_rows(url) == ["precious"]
    assert Path(ls(tf_server_repo)["mv-repair"]["path"]).resolve() == target.resolve()


def test_gc_keeps_database_while_branch_is_checked_out_elsewhere(tf_server_repo: Path, tmp_path: Path) -> None:
    wt = new(tf_server_repo, "rehomed")
    url = db_url(wt)
    write_row(url)
    git(tf_server_repo, "worktree", "remove", str(wt))
    git(tf_server_repo, "worktree", "add", "-q", str(tmp_path / "other-home"), "rehomed")
    assert gc_dry(tf_server_repo) == []
    run_tf(tf_server_repo, "gc")
    assert read_rows(url) == ["precious"]


def test_packed_refs_keep_database_of_existing_branch(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    wt = new(tf_server_repo, "packed")
    url = db_url(wt)
    write_row(url)
    git(tf_server_repo, "worktree", "remove", str(wt))  # the branch stays
    r = git(tf_server_repo, "pack-refs", "--all")  # reports each packed loose ref as a deletion
    assert "packed" in branches(tf_server_repo)
    assert read_rows(url) == ["precious"], r.stderr
    assert "packed" in ls(tf_server_repo)


def test_rerun_keeps_database_of_ready_workspace(tf_repo: Path) -> None:
    wt = new(tf_repo, "rerun")
    url = db_url(wt)
    write_row(url)
    rec = cluster_of(tf_repo, "rerun")
    assert rec is not None
    record = home() / "clusters" / rec["id"] / "cluster.json"
    record.rename(record.with_suffix(".lost"))  # what a lost record looks like to treefork
    try:
        r = run_tf(tf_repo, "new", "rerun", check=False)
        assert read_rows(url) == ["precious"], r.err
        assert r.rc == 1
        assert_one_line_error(r.err, "will not replace")
        # sync --quiet, the agents' session-start no-op, finds the workspace ready and its env file there: it
        # touches nothing at all (so nothing to replace either); `sync rerun`, asked by a person, says the
        # database is not answering as recorded (finding 37) and touches nothing either
        run_tf(wt, "sync", "--quiet")
        r = run_tf(tf_repo, "sync", "rerun", check=False)
        assert r.rc == 1 and "is ready" not in r.err
        assert read_rows(url) == ["precious"] and db_url(wt) == url
    finally:
        record.with_suffix(".lost").rename(record)
    assert read_rows(url) == ["precious"]


def test_control_characters_in_path_are_refused(tf_server_repo: Path, tmp_path: Path) -> None:
    bad = f"{tmp_path}/a\nworktree {tmp_path}/phantom"
    r = run_tf(tf_server_repo, "new", "nl", "--path", bad, check=False)
    assert r.rc != 0 and "control character" in r.err
    assert "nl" not in ls(tf_server_repo)


def test_newline_in_a_worktree_path_neither_corrupts_nor_injects_worktrees(
    tf_server_repo: Path, tmp_path: Path
) -> None:
    from treefork.git import Repo

    live = new(tf_server_repo, "live")
    url = db_url(live)
    write_row(url)
    # a worktree added by git itself, whose path crafts a phantom record naming another path
    odd = tmp_path / f"odd\n\nworktree {tmp_path}/phantom\nHEAD {'0' * 40}\nbranch refs/heads/zzz"
    git(tf_server_repo, "worktree", "add", "-q", "-b", "odd", str(odd))
    paths = [t.path for t in Repo.discover(tf_server_repo).worktrees()]
    assert paths == [tf_server_repo.resolve(), live.resolve(), odd] or sorted(map(str, paths)) == sorted(
        map(str, [tf_server_repo.resolve(), live.resolve(), odd])
    )
    assert gc_dry(tf_server_repo) == []
    run_tf(tf_server_repo, "gc")
    assert read_rows(url) == ["precious"]


def test_rm_keeps_worktree_that_reused_the_path(tf_server_repo: Path) -> None:
    wt = new(tf_server_repo, "reused")
    git(tf_server_repo, "worktree", "remove", str(wt))
    git(tf_server_repo, "worktree", "add", "-q", "-b", "someone-else", str(wt))
    (wt / "their-work.txt").write_text("not treefork's\n")
    git(wt, "add", "their-work.txt")
    git(wt, "commit", "-q", "-m", "their work")
    assert ls(tf_server_repo)["reused"]["worktree"] == "reused"
    r = run_tf(tf_server_repo, "rm", "reused", "--force", "--json")
    assert json.loads(r.out)[0]["worktree_removed"] is False
    assert (wt / "their-work.txt").read_text() == "not treefork's\n"
    assert wt.resolve() in worktree_paths(tf_server_repo) and "someone-else" in branches(tf_server_repo)
    assert "reused" not in ls(tf_server_repo)


def test_rm_keeps_branch_treefork_did_not_create(tf_server_repo: Path) -> None:
    git(tf_server_repo, "branch", "users-own-branch")
    new(tf_server_repo, "review", "--branch", "users-own-branch")
    out = json.loads(run_tf(tf_server_repo, "rm", "review", "--delete-branch", "--json").out)
    assert out[0]["branch_deleted"] is False and "not created by treefork" in out[0]["branch_kept_reason"]
    assert "users-own-branch" in branches(tf_server_repo)


@pytest.mark.parametrize("layout", ["file-link", "dir-link"])
def test_copy_files_never_writes_through_symlink(tf_server_repo: Path, tmp_path: Path, layout: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "app.yml").write_text("victim\n")
    (tf_server_repo / "treefork.toml").write_text('copy_files = ["config/app.yml"]\n')
    (tf_server_repo / "config").mkdir()
    (tf_server_repo / "config" / "app.yml").write_text("secret: from main\n")
    git(tf_server_repo, "switch", "-q", "-c", "evil")
    if layout == "file-link":
        (tf_server_repo / "config" / "app.yml").unlink()
        (tf_server_repo / "config" / "app.yml").symlink_to(outside / "app.yml")
    else:
        shutil.rmtree(tf_server_repo / "config")
        (tf_server_repo / "config").symlink_to(outside)
    git(tf_server_repo, "add", "config")
    git(tf_server_repo, "commit", "-q", "-m", "evil link")
    git(tf_server_repo, "switch", "-q", "main")
    shutil.rmtree(tf_server_repo / "config", ignore_errors=True)
    (tf_server_repo / "config").mkdir(exist_ok=True)
    (tf_server_repo / "config" / "app.yml").write_text("secret: from main\n")
    r = run_tf(tf_server_repo, "new", "evil", check=False)
    assert r.rc != 0 and "symlink" in r.err and "Traceback" not in r.err
    assert (outside / "app.yml").read_text() == "victim\n"
    assert sorted(p.name for p in outside.iterdir()) == ["app.yml"]
