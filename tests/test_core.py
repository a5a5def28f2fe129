"""The core commands end to end: real git, the real embedded PostgreSQL, the real CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import as_sample_spells, db_url, git, run_tf
from testing.checks import assert_nothing_left
from testing.cli import assert_one_line_error, gc_dry, ls, new
from testing.repo import branches, registry, root_db, worktree_paths
from testing.server import can_connect, db_exists

LS_FIELDS = {"name", "branch", "path", "parent", "backend", "db_branch", "clone_method"}


def _notes(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT who FROM notes ORDER BY id")]


def _add_note(url: str, who: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO notes (who) VALUES (%s)", (who,))


def _but_disk(rows: dict[str, dict]) -> dict[str, dict]:
    """ls rows without the disk a cluster uses, which a live cluster changes between two calls (the first admin
    login after a fork writes PostgreSQL's relcache init file, ~160 kB, as VACUUM FULL pg_authid removed it)."""
    return {name: {k: v for k, v in row.items() if k != "db_disk_bytes"} for name, row in rows.items()}


def test_isolation_stacking_ls_and_url(tf_repo: Path) -> None:
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    with psycopg.connect(root_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, who text NOT NULL)")
        conn.execute("INSERT INTO notes (who) VALUES ('seed')")

    a = new(tf_repo, "a")
    a_url = db_url(a)
    _add_note(a_url, "a1")
    b = new(tf_repo, "b")
    b_url = db_url(b)
    assert len({root_url, a_url, b_url}) == 3

    # 1. isolation: a's row is invisible in b and in the root, and b's in a
    _add_note(b_url, "b1")
    assert _notes(a_url) == ["seed", "a1"]
    assert _notes(b_url) == ["seed", "b1"]
    assert _notes(root_url) == ["seed"]

    # 2. stacking: c forks from a and sees a's rows as of the fork, not a's later writes
    c = new(tf_repo, "c", "--from", "a")
    c_url = db_url(c)
    assert _notes(c_url) == ["seed", "a1"]
    _add_note(a_url, "a2")
    _add_note(c_url, "c1")
    assert _notes(c_url) == ["seed", "a1", "c1"]
    assert _notes(a_url) == ["seed", "a1", "a2"]
    assert _notes(root_url) == ["seed"]
    # the git branch forks from a's HEAD too
    git(a, "commit", "-q", "--allow-empty", "-m", "on a")
    d = new(tf_repo, "d", "--from", "a")
    assert git(d, "rev-parse", "HEAD").stdout == git(a, "rev-parse", "HEAD").stdout
    assert git(d, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip() == "d"

    # 3. ls --json: the fields, the parents, from the main worktree and from inside a linked worktree
    rows = ls(tf_repo)
    assert set(rows) == {"root", "a", "b", "c", "d"}
    for name in ("a", "b", "c", "d"):
        row = rows[name]
        assert LS_FIELDS <= set(row), row
        assert row["backend"] == "local"
        assert row["clone_method"] in {"clone", "copy"}
        assert row["branch"] == name
        assert Path(row["path"]) == {"a": a, "b": b, "c": c, "d": d}[name]
        assert row["db_branch"] and db_exists(row["db_branch"])
    assert rows["a"]["parent"] == "root" and rows["b"]["parent"] == "root"
    assert rows["c"]["parent"] == "a" and rows["d"]["parent"] == "a"
    assert rows["root"]["db_branch"] == root_db(tf_repo)
    assert len({rows[n]["db_branch"] for n in rows}) == 5
    assert _but_disk(ls(c)) == _but_disk(rows)  # the registry lives in the common git dir, shared by every worktree

    # 4. url NAME is what the worktree's .env says; bare `url` inside a worktree is its own
    for name, wt in (("a", a), ("b", b), ("c", c)):
        assert as_sample_spells(run_tf(tf_repo, "url", name).out.strip()) == db_url(wt)
        assert as_sample_spells(run_tf(wt, "url").out.strip()) == db_url(wt)
        assert as_sample_spells(json.loads(run_tf(b, "url", name, "--json").out)["url"]) == db_url(wt)
    (c / "nested" / "dir").mkdir(parents=True)
    assert as_sample_spells(run_tf(c / "nested" / "dir", "url").out.strip()) == c_url
    assert _but_disk(ls(c / "nested" / "dir")) == _but_disk(rows)
    assert run_tf(a, "url", "root").out.strip() == root_url
    assert run_tf(tf_repo, "url").out.strip() == root_url
    bad = run_tf(tf_repo, "url", "nope", check=False)
    assert bad.rc != 0
    assert_one_line_error(bad.err, "nope")


def test_rm_dirty_force_drop_and_branch_rules(tf_repo: Path) -> None:
    # a dirty worktree is refused without --force, and nothing is removed
    d = new(tf_repo, "dirty")
    d_url = db_url(d)
    d_db = ls(tf_repo)["dirty"]["db_branch"]
    (d / "scratch.txt").write_text("work in progress\n")
    r = run_tf(tf_repo, "rm", "dirty", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "--force", str(d))
    assert d.is_dir() and (d / "scratch.txt").exists() and d.resolve() in worktree_paths(tf_repo)
    assert can_connect(d_url) and "dirty" in ls(tf_repo)
    # a modified tracked file counts too
    (d / "scratch.txt").unlink()
    (d / "README.md").write_text("changed\n")
    assert run_tf(tf_repo, "rm", "dirty", check=False).rc != 0
    assert can_connect(d_url)

    # --force removes it: worktree, database (the old URL no longer connects), registry entry;
    # the branch had no commits of its own, so it is merged into its parent and deleted
    out = json.loads(run_tf(tf_repo, "rm", "dirty", "--force", "--json").out)
    assert out == [
        {
            "schema_version": 2,
            "name": "dirty",
            "db_dropped": True,
            "worktree_removed": True,
            "branch_deleted": True,
            "branch_kept_reason": None,
            "error": None,
        }
    ]
    assert not d.exists() and d.resolve() not in worktree_paths(tf_repo)
    assert not can_connect(d_url)
    assert not db_exists(d_db)
    assert "dirty" not in ls(tf_repo) and "dirty" not in branches(tf_repo)
    assert gc_dry(tf_repo) == []

    # an unmerged branch (with commits) is kept, and rm says so
    u = new(tf_repo, "unmerged")
    (u / "feature.txt").write_text("x\n")
    git(u, "add", "feature.txt")
    git(u, "commit", "-q", "-m", "feature")
    u_url = db_url(u)
    r = run_tf(tf_repo, "rm", "unmerged")
    assert r.rc == 0
    assert "not merged" in r.err and "--delete-branch" in r.err
    assert "unmerged" in branches(tf_repo) and not u.exists() and not can_connect(u_url)
    assert "unmerged" not in ls(tf_repo)
    git(tf_repo, "branch", "-D", "unmerged")

    # --delete-branch deletes it anyway
    f = new(tf_repo, "forced")
    git(f, "commit", "-q", "--allow-empty", "-m", "work")
    out = json.loads(run_tf(tf_repo, "rm", "forced", "--delete-branch", "--json").out)
    assert out[0]["branch_deleted"] is True and out[0]["db_dropped"] is True
    assert "forced" not in branches(tf_repo)

    # a branch merged into its parent's HEAD is deleted without --delete-branch
    m = new(tf_repo, "merged")
    git(m, "commit", "-q", "--allow-empty", "-m", "to merge")
    git(tf_repo, "merge", "-q", "--ff-only", "merged")
    out = json.loads(run_tf(tf_repo, "rm", "merged", "--json").out)
    assert out[0]["branch_deleted"] is True
    assert "merged" not in branches(tf_repo)

    # the root database is never dropped
    assert run_tf(tf_repo, "rm", "root", check=False).rc != 0
    assert db_exists(root_db(tf_repo))
    assert set(ls(tf_repo)) == {"root"} and branches(tf_repo) == {"main"}
    assert gc_dry(tf_repo) == []


def test_gc_collects_only_workspaces_whose_worktree_is_gone(tf_repo: Path) -> None:
    gone = new(tf_repo, "gone")
    live = new(tf_repo, "live")
    gone_url, live_url = db_url(gone), db_url(live)
    gone_db = ls(tf_repo)["gone"]["db_branch"]
    assert gc_dry(tf_repo) == []  # nothing to collect while every worktree is there

    git(tf_repo, "worktree", "remove", str(gone))  # behind treefork's back
    assert not gone.exists()
    actions = gc_dry(tf_repo)
    assert actions == [
        {
            "schema_version": 2,
            "name": "gone",
            "db_branch": gone_db,
            "action": "drop",
            "reason": actions[0]["reason"],
            "db_id": actions[0]["db_id"],
            "done": False,
        }
    ]
    assert "gone" in actions[0]["reason"]
    assert can_connect(gone_url) and "gone" in ls(tf_repo)  # a dry run drops nothing
    assert ls(tf_repo)["gone"]["worktree"] == "missing"

    result = json.loads(run_tf(tf_repo, "gc", "--json").out)
    assert result["dry_run"] is False
    assert [(a["name"], a["action"], a["done"]) for a in result["actions"]] == [("gone", "drop", True)]
    assert not can_connect(gone_url) and not db_exists(gone_db)
    assert set(ls(tf_repo)) == {"root", "live"}
    assert gc_dry(tf_repo) == []
    # the live workspace is untouched
    assert can_connect(live_url) and live.is_dir() and db_url(live) == live_url
    assert db_exists(root_db(tf_repo))
    # a second gc has nothing to do
    assert json.loads(run_tf(tf_repo, "gc", "--json").out)["actions"] == []

    # a worktree directory deleted with rm -rf (git calls it prunable) looks like one moved by hand, so it
    # is kept until git forgets it (`git worktree prune`); then it is collected
    shutil_gone = new(tf_repo, "rmrf")
    rmrf_url = db_url(shutil_gone)
    import shutil

    shutil.rmtree(shutil_gone)
    assert gc_dry(tf_repo) == [] and can_connect(rmrf_url)
    git(tf_repo, "worktree", "prune")
    assert [a["name"] for a in gc_dry(tf_repo)] == ["rmrf"]
    run_tf(tf_repo, "gc")
    assert not can_connect(rmrf_url)
    assert set(ls(tf_repo)) == {"root", "live"} and can_connect(live_url)


def test_init_and_new_are_idempotent(tf_repo: Path) -> None:
    before = registry(tf_repo)
    assert run_tf(tf_repo, "init", "--no-import").rc == 0
    after = registry(tf_repo)
    assert after["repo_id"] == before["repo_id"] and after["root_db_branch"] == before["root_db_branch"]

    first = json.loads(run_tf(tf_repo, "new", "same", "--json").out)
    url = db_url(Path(first["path"]))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
    second = run_tf(tf_repo, "new", "same", "--json")
    assert second.rc == 0
    again = json.loads(second.out)
    for key in ("name", "path", "branch", "db_branch", "parent", "status"):
        assert again[key] == first[key]
    assert db_url(Path(again["path"])) == url
    with psycopg.connect(url) as conn:  # the same database, not a fresh fork
        assert conn.execute("SELECT to_regclass('kept')").fetchone() != (None,)
    assert [n for n in ls(tf_repo) if n != "root"] == ["same"]
    # `new` from inside the worktree itself also finds it
    assert json.loads(run_tf(Path(first["path"]), "new", "same", "--json").out)["path"] == first["path"]
    # `root` is reserved
    r = run_tf(tf_repo, "new", "root", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "root")
    # --from a workspace that does not exist
    r = run_tf(tf_repo, "new", "orphan", "--from", "ghost", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "ghost")
    assert_nothing_left(tf_repo, "orphan")


@pytest.mark.parametrize("args", [("ls",), ("new", "x"), ("url",), ("rm", "x"), ("gc", "--dry-run"), ("init",)])
def test_commands_outside_a_repo_give_a_one_line_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    r = run_tf(outside, *args, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)}, check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "not inside a git repository")
    assert list(outside.iterdir()) == []


def test_commands_before_init_say_so(repo: Path) -> None:
    for args in (("ls",), ("new", "x"), ("gc",)):
        r = run_tf(repo, *args, check=False)
        assert r.rc == 1
        assert_one_line_error(r.err, "treefork init")
    assert branches(repo) == {"main"} and len(worktree_paths(repo)) == 1
