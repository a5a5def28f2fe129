"""Workspace names: bad ones are refused with one line and leave nothing; odd but valid ones work,
and every database name is a valid, unique PostgreSQL identifier of at most 63 bytes."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PgServer, as_sample_spells, db_url, run_tf
from testing.cli import assert_one_line_error, gc_dry, ls, new
from testing.repo import branches, registry, worktree_paths, worktrees_dir
from treefork.errors import FatalError
from treefork.names import PG_MAX_IDENT_BYTES, WorkspaceName, db_name, root_db_name

BAD_NAMES = [
    "has space",
    "a..b",
    "",
    "$(touch x)",
    "`touch x`",
    "a;b",
    "x" * 250,
    "a|b",
    "tab\tname",
    "new\nline",
    "/abs",
    "trailing/",
    "a//b",
    "x.lock",
    ".hidden",
    "q'uote",
    "semi;rm -rf ~",
    "@",
]


@pytest.mark.parametrize("raw", BAD_NAMES + ["-x", "--", "-"])
def test_bad_names_are_refused_in_process(raw: str) -> None:
    with pytest.raises(FatalError) as e:
        WorkspaceName.of(raw)
    assert "\n" not in str(e.value)


def test_bad_names_on_the_cli_create_nothing(tf_server_repo: Path, pg_server: PgServer) -> None:
    before_dbs = _databases(pg_server)
    for raw in BAD_NAMES:
        r = run_tf(tf_server_repo, "new", raw, check=False)
        assert r.rc == 1, (raw, r)
        assert_one_line_error(r.err, "invalid workspace name")
    for raw in ("has space", "$(touch x)", "a..b"):  # --branch is checked the same way
        r = run_tf(tf_server_repo, "new", "ok-name", "--branch", raw, check=False)
        assert r.rc == 1, (raw, r)
        assert_one_line_error(r.err, "invalid workspace name")
    # a leading '-' is an option to the parser; after `--` it is a name, and refused as one
    r = run_tf(tf_server_repo, "new", "--", "-x", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "starts with '-'")
    r = run_tf(tf_server_repo, "new", "-x", check=False)
    assert r.rc != 0 and "Traceback" not in r.err
    # nothing was created: no worktree dir, no registry entry, no branch, no database, no file from `$(touch x)`
    assert not worktrees_dir(tf_server_repo).exists()
    assert not (tf_server_repo / "x").exists() and not (tf_server_repo.parent / "x").exists()
    assert registry(tf_server_repo)["workspaces"] == {}
    assert branches(tf_server_repo) == {"main"}
    assert len(worktree_paths(tf_server_repo)) == 1
    assert _databases(pg_server) == before_dbs
    assert gc_dry(tf_server_repo) == []


def _databases(pg_server: PgServer) -> set[str]:
    return {name for kind, name in pg_server.names() if kind == "database"}


def test_unicode_long_and_slashed_names_work_and_stay_apart(tf_server_repo: Path, pg_server: PgServer) -> None:
    """On one server, where names that slug alike must still get databases of their own (a cluster each on the
    local backend: tests/stress/test_hostile.py)."""
    repo = tf_server_repo
    long_name = "l" * 190 + "/" + "m" * 9  # 200 characters
    assert len(long_name) == 200
    names = ["función/ñ", long_name, "feature/auth", "feature-auth", "feature_auth"]
    paths = {}
    for name in names:
        paths[name] = new(repo, name)
    rows = ls(repo)
    dbs = {name: rows[name]["db_branch"] for name in names}
    assert len(set(dbs.values())) == len(names)  # names that slug alike get different databases
    on_server = _databases(pg_server)
    for name in names:
        assert rows[name]["branch"] == name and name in branches(repo)
        assert paths[name].name == name.replace("/", "+")
        assert dbs[name] in on_server and len(dbs[name].encode()) <= PG_MAX_IDENT_BYTES
        assert as_sample_spells(run_tf(repo, "url", name).out.strip()) == db_url(paths[name])
    # and their databases are isolated from one another
    with psycopg.connect(db_url(paths["feature/auth"]), autocommit=True) as conn:
        conn.execute("CREATE TABLE only_here (x int)")
    for other in ("feature-auth", "feature_auth"):
        with psycopg.connect(db_url(paths[other])) as conn:
            assert conn.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
    out = json.loads(run_tf(repo, "rm", *names, "--json").out)
    assert all(r["db_dropped"] and r["worktree_removed"] and r["branch_deleted"] for r in out)
    assert not set(dbs.values()) & _databases(pg_server)
    assert set(ls(repo)) == {"root"} and gc_dry(repo) == []


_valid_chars = st.characters(blacklist_categories=("C", "Z"), blacklist_characters="$`;|&<>'\"\\()!{}#%*?[]~^:,=")


@settings(deadline=None)
@given(a=st.text(_valid_chars, min_size=1, max_size=200), rid=st.from_regex(r"[0-9a-f]{6}", fullmatch=True))
def test_db_names_are_short_valid_and_deterministic(a: str, rid: str) -> None:
    name = db_name(rid, a)
    assert len(name.encode("utf-8")) <= PG_MAX_IDENT_BYTES
    assert name.startswith(f"tf_{rid}_")
    assert name == db_name(rid, a)
    assert all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in name)
    assert name != root_db_name(rid)


@settings(deadline=None)
@given(a=st.text(_valid_chars, min_size=1, max_size=60), b=st.text(_valid_chars, min_size=1, max_size=60))
def test_different_names_get_different_db_names(a: str, b: str) -> None:
    if a != b:
        assert db_name("abc123", a) != db_name("abc123", b)


def test_slug_alike_names_differ_and_the_root_cannot_collide() -> None:
    assert db_name("abc123", "feature/auth") != db_name("abc123", "feature-auth")
    assert db_name("abc123", "root") != root_db_name("abc123")
    assert db_name("abc123", "ñ").startswith("tf_abc123_n_")
    assert db_name("abc123", "日本").startswith("tf_abc123_ws_")
