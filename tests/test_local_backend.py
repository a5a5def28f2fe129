"""The local backend against the real embedded server: it never drops what it did not create, a
failure or crash mid-`new` leaves nothing (or something a re-run finishes), and a parent with live
connections names its blockers or, when asked, disconnects them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import db_url, git, run_tf
from tf_helpers import (
    admin_conn,
    assert_nothing_left,
    assert_one_line_error,
    branches,
    can_connect,
    db_exists,
    gc_dry,
    ls,
    new,
    registry,
    repo_id,
    root_db,
    worktree_paths,
    worktrees_dir,
)
from treefork.names import db_name


def _create_by_hand(name: str, comment: str | None = None) -> None:
    with admin_conn() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if comment is not None:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))


def _drop_by_hand(name: str) -> None:
    with admin_conn() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_never_drops_what_treefork_did_not_create(tf_repo: Path) -> None:
    rid = repo_id(tf_repo)
    lookalike = f"tf_{rid}_x_deadbeef"
    other_repo = f"tf_{rid}_y_cafebabe"
    collide = db_name(rid, "collide")
    _create_by_hand(lookalike)  # no mark at all
    _create_by_hand(other_repo, comment="treefork:ffffff:y")  # another repo's mark
    _create_by_hand(collide, comment="made by hand")  # exactly the name `new collide` would use
    try:
        gone = new(tf_repo, "gone")
        git(tf_repo, "worktree", "remove", str(gone))
        assert [a["workspace"] for a in gc_dry(tf_repo)] == ["gone"]  # only ours, never the look-alikes
        run_tf(tf_repo, "gc")
        assert db_exists(lookalike) and db_exists(other_repo) and db_exists(collide)
        assert db_exists(root_db(tf_repo))
        assert gc_dry(tf_repo) == []

        # `new` whose database name is taken by a hand-made database refuses, and does not drop it
        r = run_tf(tf_repo, "new", "collide", check=False)
        assert r.rc == 1
        assert_one_line_error(r.err, collide, "not made by treefork")
        assert db_exists(collide)
        assert not (worktrees_dir(tf_repo) / "collide").exists()
        assert "collide" not in registry(tf_repo)["workspaces"] and "collide" not in branches(tf_repo)

        # neither rm nor gc ever drops the root
        assert run_tf(tf_repo, "rm", "root", "--force", check=False).rc == 1
        for _ in range(2):
            run_tf(tf_repo, "gc")
        assert db_exists(root_db(tf_repo))
        root_url = run_tf(tf_repo, "url", "root").out.strip()
        assert can_connect(root_url)
    finally:
        for name in (lookalike, other_repo, collide):
            _drop_by_hand(name)


@pytest.mark.parametrize("point", ["new:after-worktree", "new:after-db", "new:after-env"])
def test_an_injected_failure_mid_new_leaves_nothing(tf_repo: Path, point: str) -> None:
    name = "fail-" + point.split(":")[1]
    r = run_tf(tf_repo, "new", name, env={"TREEFORK_FAIL_AT": point}, check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, f"injected failure at {point}")
    assert_nothing_left(tf_repo, name)
    assert set(ls(tf_repo)) == {"root"}
    # a re-run without the failure succeeds
    wt = new(tf_repo, name)
    assert can_connect(db_url(wt))
    assert ls(tf_repo)[name]["status"] == "ready"
    run_tf(tf_repo, "rm", name)
    assert_nothing_left(tf_repo, name)


def test_an_injected_failure_mid_stacked_new_leaves_the_parent_alone(tf_repo: Path) -> None:
    parent = new(tf_repo, "parent")
    p_url = db_url(parent)
    with psycopg.connect(p_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
    r = run_tf(tf_repo, "new", "kid", "--from", "parent", env={"TREEFORK_FAIL_AT": "new:after-db"}, check=False)
    assert r.rc == 1
    assert_nothing_left(tf_repo, "kid")
    with psycopg.connect(p_url) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(7,)]
    assert parent.is_dir() and ls(tf_repo)["parent"]["status"] == "ready"


@pytest.mark.parametrize("point", ["new:after-worktree", "new:after-db", "new:after-env"])
def test_a_crash_mid_new_is_finished_by_a_rerun(tf_repo: Path, point: str) -> None:
    r = run_tf(tf_repo, "new", "crashy", env={"TREEFORK_CRASH_AT": point}, check=False)
    assert r.rc == -signal.SIGKILL
    assert registry(tf_repo)["workspaces"]["crashy"]["status"] == "creating"
    # gc leaves it alone: its worktree is there, so a re-run of `new` is what finishes it
    assert gc_dry(tf_repo) == []
    wt = new(tf_repo, "crashy")
    row = ls(tf_repo)["crashy"]
    assert row["status"] == "ready" and row["db_branch"] == db_name(repo_id(tf_repo), "crashy")
    url = db_url(wt)
    assert url == run_tf(tf_repo, "url", "crashy").out.strip()
    assert can_connect(url)
    assert git(wt, "status", "--porcelain").stdout == ""
    out = json.loads(run_tf(tf_repo, "rm", "crashy", "--json").out)
    assert out[0]["db_dropped"] and out[0]["worktree_removed"] and out[0]["branch_deleted"]
    assert_nothing_left(tf_repo, "crashy")


def test_a_crash_mid_new_then_the_worktree_removed_is_collected_by_gc(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "new", "lost", env={"TREEFORK_CRASH_AT": "new:after-db"}, check=False)
    assert r.rc == -signal.SIGKILL
    lost_db = db_name(repo_id(tf_repo), "lost")
    assert db_exists(lost_db)
    path = worktrees_dir(tf_repo) / "lost"
    git(tf_repo, "worktree", "remove", "--force", str(path))
    actions = gc_dry(tf_repo)
    assert [(a["workspace"], a["db_branch"], a["action"]) for a in actions] == [("lost", lost_db, "drop")]
    run_tf(tf_repo, "gc")
    assert not db_exists(lost_db)
    assert "lost" not in registry(tf_repo)["workspaces"]
    assert set(ls(tf_repo)) == {"root"} and gc_dry(tf_repo) == []
    assert path.resolve() not in worktree_paths(tf_repo)
    # the name is free again
    wt = new(tf_repo, "lost")
    assert can_connect(db_url(wt))


def test_a_crash_after_the_database_with_the_registry_entry_lost_is_collected(tf_repo: Path) -> None:
    """A database with treefork's mark but no registry entry (what a crash between the two can leave)."""
    r = run_tf(tf_repo, "new", "stray", env={"TREEFORK_CRASH_AT": "new:after-db"}, check=False)
    assert r.rc == -signal.SIGKILL
    git(tf_repo, "worktree", "remove", "--force", str(worktrees_dir(tf_repo) / "stray"))
    reg_file = tf_repo / ".git" / "treefork" / "registry.json"
    data = json.loads(reg_file.read_text())
    del data["workspaces"]["stray"]
    reg_file.write_text(json.dumps(data))
    stray_db = db_name(repo_id(tf_repo), "stray")
    actions = gc_dry(tf_repo)
    assert [(a["workspace"], a["db_branch"], a["action"]) for a in actions] == [("stray", stray_db, "drop")]
    assert "no workspace in the registry" in actions[0]["reason"]
    run_tf(tf_repo, "gc")
    assert not db_exists(stray_db) and gc_dry(tf_repo) == []
    assert db_exists(root_db(tf_repo))


def test_parent_with_live_connections(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    a_url = db_url(a)
    with psycopg.connect(a_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")

    holder = psycopg.connect(a_url, autocommit=True, application_name="tf-test-blocker")
    try:
        pid = holder.info.backend_pid
        r = run_tf(tf_repo, "new", "b", "--from", "a", check=False)
        assert r.rc == 1
        assert_one_line_error(r.err, f"pid {pid}", "tf-test-blocker", "--terminate-blockers")
        assert_nothing_left(tf_repo, "b")
        assert holder.execute("SELECT 1").fetchone() == (1,)  # untouched
        assert ls(tf_repo)["a"]["status"] == "ready"

        b = new(tf_repo, "b", "--from", "a", "--terminate-blockers")
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
        assert holder.closed or holder.broken
    finally:
        holder.close()
    with psycopg.connect(db_url(b)) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert ls(tf_repo)["b"]["parent"] == "a"
    # the parent accepts connections again after the clone
    with psycopg.connect(a_url) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_workspace_databases_belong_to_the_repo_role_not_the_superuser(tf_repo: Path) -> None:
    wt = new(tf_repo, "owned")
    url = db_url(wt)
    rid = repo_id(tf_repo)
    assert url.startswith(f"postgresql://tf_{rid}:")
    assert "127.0.0.1" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (f"tf_{rid}",)
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    with admin_conn() as conn:
        owner, mark = conn.execute(
            "SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (db_name(rid, "owned"),),
        ).fetchone()
    assert owner == f"tf_{rid}" and mark == f"treefork:{rid}:owned"
    # the superuser password is nowhere in the worktree's env file or treefork's output
    password = json.loads((Path(__import__("os").environ["TREEFORK_HOME"]) / "server.json").read_text())["password"]
    assert password not in (wt / ".env").read_text()
    assert password not in run_tf(tf_repo, "ls", "--json").out
