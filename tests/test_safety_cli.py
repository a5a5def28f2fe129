"""Commands say what they did and refuse what they cannot do: every name checked before `rm` removes
any, options that contradict a workspace refused, the root, ambiguous ref names and --ttl on local named
as errors, and a removed parent kept in its children's lineage."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.cli import assert_one_line_error, ls, new
from testing.repo import branches


def write_row(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS keep (v text)")
        conn.execute("INSERT INTO keep VALUES ('precious')")


def read_rows(url: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM keep")]


def test_rm_checks_every_name_before_removing_any(tf_server_repo: Path) -> None:
    a, b = new(tf_server_repo, "a"), new(tf_server_repo, "b")
    write_row(db_url(a))
    write_row(db_url(b))
    r = run_tf(tf_server_repo, "rm", "a", "bogus", "b", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "nothing was removed", "bogus")
    assert {"a", "b"} <= set(ls(tf_server_repo))
    assert read_rows(db_url(a)) == ["precious"] and read_rows(db_url(b)) == ["precious"]


def test_rm_reports_each_name_and_goes_on_after_a_failure(tf_server_repo: Path) -> None:
    new(tf_server_repo, "one")
    dirty = new(tf_server_repo, "dirty")
    new(tf_server_repo, "two")
    (dirty / "wip.txt").write_text("work in progress\n")
    r = run_tf(tf_server_repo, "rm", "one", "dirty", "two", "--json", check=False)
    assert r.rc == 5  # exitcodes.PARTIAL: one and two were removed, dirty was not
    results = {x["name"]: x for x in json.loads(r.out)}
    assert results["one"]["db_dropped"] and results["two"]["db_dropped"]
    assert "uncommitted changes" in results["dirty"]["error"]
    assert set(ls(tf_server_repo)) == {"root", "dirty"} and (dirty / "wip.txt").exists()


def test_new_refuses_options_that_contradict_an_existing_workspace(tf_server_repo: Path) -> None:
    a = new(tf_server_repo, "a")
    new(tf_server_repo, "b")
    before = ls(tf_server_repo)["a"]
    r = run_tf(tf_server_repo, "new", "a", "--from", "b", "--branch", "c", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "already exists", "--from b", "--branch c")
    assert ls(tf_server_repo)["a"] == before and "c" not in branches(tf_server_repo)
    again = run_tf(tf_server_repo, "new", "a")  # the same request again: no claim of work done
    assert "already exists" in again.err and "forked" not in again.err
    assert again.out.strip() == str(a)


def test_rm_root_says_the_root_cannot_be_removed(tf_server_repo: Path) -> None:
    r = run_tf(tf_server_repo, "rm", "root", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "root workspace cannot be removed")


@pytest.mark.parametrize("name", ["FETCH_HEAD", "HEAD", "ORIG_HEAD", "refs/heads/x", "heads/x", "origin/main"])
def test_names_that_make_git_refs_ambiguous_are_refused(tf_server_repo: Path, name: str) -> None:
    git(tf_server_repo, "remote", "add", "origin", "https://example.invalid/app.git")
    for args in (("new", name), ("new", "fine", "--branch", name)):
        r = run_tf(tf_server_repo, *args, check=False)
        assert r.rc == 1, r.err
        assert_one_line_error(r.err, repr(name))
        assert any(word in r.err for word in ("pseudo-ref", "ref name", "remote")), r.err
    assert set(ls(tf_server_repo)) == {"root"}


def test_ttl_on_the_local_backend_is_an_error(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "new", "t", "--ttl", "1d", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "--ttl", "neon")
    assert "t" not in ls(tf_repo)


def test_rm_keeps_the_real_lineage_of_children(tf_server_repo: Path) -> None:
    new(tf_server_repo, "feat-A")
    child = new(tf_server_repo, "feat-B", "--from", "feat-A")
    write_row(db_url(child))
    run_tf(tf_server_repo, "rm", "feat-A", "--force")
    row = ls(tf_server_repo)["feat-B"]
    assert row["forked_from"] == "feat-A" and row["parent"] == "root"
    assert read_rows(db_url(child)) == ["precious"]
