"""Schema collisions from catalog signatures (fork point against now): what is a change, what is not, and what
`merge` names before it merges. Real git, real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.cli import new


def _sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)  # type: ignore[arg-type]


def _commit(where: Path, name: str) -> None:
    (where / name).write_text(name + "\n")
    git(where, "add", ".")
    git(where, "commit", "-q", "-m", name)


def _schema_collisions(repo: Path) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    r = run_tf(repo, "diff", "--all", "--json", check=False)
    assert r.rc in (0, 4), r.text
    return {
        (tuple(c["workspaces"]), tuple(c["objects"]))
        for d in json.loads(r.out)
        for c in d["collisions"]
        if c["kind"] == "schema"
    }


def _forkpoint_files(repo: Path, pattern: str) -> list[Path]:
    return sorted((repo / ".git" / "treefork" / "forkpoints").glob(pattern))


@pytest.fixture
def users(tf_server_repo: Path) -> Path:
    root = run_tf(tf_server_repo, "url", "root").out.strip()
    _sql(root, "CREATE TABLE users (id serial PRIMARY KEY, email text)", "CREATE INDEX users_email ON users (email)")
    return tf_server_repo


def test_rows_truncate_vacuum_full_and_analyze_in_a_sibling_are_no_change(users: Path) -> None:
    a, b = new(users, "a"), new(users, "b")
    assert len(_forkpoint_files(users, "*.signature.json")) == 2  # recorded by `new`, beside the dumps
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN phone text")
    _sql(
        db_url(b),
        "INSERT INTO users (email) SELECT 'u' || i FROM generate_series(1, 100) i",
        "ANALYZE users",
        "TRUNCATE users",
        "VACUUM FULL users",
        "INSERT INTO users (email) VALUES ('again')",
    )
    assert _schema_collisions(users) == set()
    _commit(a, "a.txt")
    r = run_tf(users, "merge", "a")
    assert "also changed" not in r.err, r.err


@pytest.mark.parametrize(
    ("statement", "key", "said"),
    [
        ("CREATE UNIQUE INDEX users_email_key ON users (email)", "INDEX public.users_email_key", "index"),
        ("DROP INDEX users_email", "INDEX public.users_email", "index"),
        ("ALTER TABLE users ADD CONSTRAINT lower_email CHECK (email = lower(email)) NOT VALID", "CHECK CONSTRAINT public.users lower_email", "constraint"),
        ("CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql AS $$ SELECT upper(t) $$", "FUNCTION public.shout(text)", "function"),
    ],
)  # fmt: skip
def test_two_siblings_changing_one_index_constraint_or_function_collide(
    users: Path, statement: str, key: str, said: str
) -> None:
    a, b = new(users, "a"), new(users, "b")
    _sql(db_url(a), statement)
    _sql(db_url(b), statement.replace("upper", "lower"))
    assert _schema_collisions(users) == {(("a", "b"), (key,))}
    _commit(a, "a.txt")
    r = run_tf(users, "merge", "a")
    assert f"workspace b also changed {said} " in r.err, r.err


@pytest.mark.parametrize("kept", ["signature", "dump"])
def test_either_fork_point_record_alone_finds_the_collision(users: Path, kept: str) -> None:
    """The signature alone (the dump gone), or the dump alone: a workspace made before signatures were kept."""
    a, b = new(users, "a"), new(users, "b")
    for gone in _forkpoint_files(users, "*.sql" if kept == "signature" else "*.signature.json"):
        gone.unlink()
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN phone text")
    _sql(db_url(b), "ALTER TABLE users ADD COLUMN email2 text")
    _commit(a, "a.txt")
    r = run_tf(users, "merge", "a", "--keep")
    assert "workspace b also changed public.users;" in r.err, r.err
    assert _schema_collisions(users) == {(("a", "b"), ("TABLE public.users",))}


def test_after_merge_a_an_untouched_sibling_does_not_collide_at_merge_b(users: Path) -> None:
    a, b, _ = new(users, "a"), new(users, "b"), new(users, "c")
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN phone text")
    _commit(a, "a.txt")
    run_tf(users, "merge", "a")
    _sql(run_tf(users, "url", "root").out.strip(), "ALTER TABLE users ADD COLUMN phone text")  # a's migration
    _sql(db_url(b), "ALTER TABLE users ADD COLUMN nickname text")
    _commit(b, "b.txt")
    r = run_tf(users, "merge", "b")
    assert "also changed" not in r.err and "could not compare" not in r.err, r.err
    ls = {row["name"]: row for row in json.loads(run_tf(users, "ls", "--json").out)}
    assert ls["c"]["collisions"] == [], ls["c"]


def test_merge_prints_a_colliding_objects_hostile_name_escaped(users: Path) -> None:
    a, b = new(users, "a"), new(users, "b")
    for where in (a, b):
        _sql(db_url(where), 'CREATE TABLE "evil\x1b]0;owned\x07\x1b[2J" (id int)')
    _commit(a, "a.txt")
    r = run_tf(users, "merge", "a")
    assert "\x1b" not in r.err and "\x07" not in r.err, r.err
    assert "workspace b also changed public.evil\\x1b]0;owned\\x07" in r.err, r.err
