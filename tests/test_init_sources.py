"""`init --import` (an existing dev database copied into the root once) and `init --server-url`
(branching on a PostgreSQL server the user already runs)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg import sql

from conftest import db_url, run_tf
from tf_helpers import admin_conn, db_exists, home, new


def _server_url(dbname: str = "postgres") -> str:
    run_tf(Path("/"), "server", "start")  # the session's server may not be up yet
    state = json.loads((home() / "server.json").read_text())
    return f"postgresql://postgres:{state['password']}@127.0.0.1:{state['port']}/{dbname}"


def test_init_import_copies_an_existing_database_into_the_root(repo: Path) -> None:
    run_tf(repo, "server", "start")
    source = f"devsrc_{repo.parent.name[-8:].lower().replace('-', '_')}"
    with admin_conn() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(source)))
    try:
        with psycopg.connect(_server_url(source), autocommit=True) as conn:
            conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO customers VALUES (1, 'ada'), (2, 'grace')")
        run_tf(repo, "init", "--import", _server_url(source))
        wt = new(repo, "feature")
        with psycopg.connect(db_url(wt)) as conn:
            assert conn.execute("SELECT name FROM customers ORDER BY id").fetchall() == [("ada",), ("grace",)]
            owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'").fetchone()[0]
            assert owner.startswith("tf_"), "imported objects belong to the repo's role, not the source's owner"
        assert db_exists(source), "the source database is only read"
        listed = {r["name"]: r for r in json.loads(run_tf(repo, "ls", "--json").out)}
        assert listed["root"]["clone_method"] == "import"
    finally:
        with admin_conn() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(source)))


def test_init_import_with_a_bad_url_is_one_line_and_leaves_no_root(repo: Path) -> None:
    r = run_tf(repo, "init", "--import", "postgresql://nobody:wrong@127.0.0.1:1/nothing", check=False)
    assert r.rc == 1
    assert (
        r.err.strip()
        .splitlines()[-1]
        .startswith("treefork: error: import from postgresql://127.0.0.1:1/nothing failed")
    )
    assert "wrong" not in r.text, "the password in the URL is never shown"
    reg = json.loads((repo / ".git" / "treefork" / "registry.json").read_text())
    assert reg["root_db_branch"] is None
    assert not db_exists(f"tf_{reg['repo_id']}_root")


def test_server_url_branches_on_an_existing_server(repo: Path) -> None:
    run_tf(repo, "init", "--server-url", _server_url())
    a = new(repo, "a")
    b = new(repo, "b")
    with psycopg.connect(db_url(a), autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_a (x int)")
    with psycopg.connect(db_url(b)) as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)
    secrets = repo / ".git" / "treefork" / "secrets.json"
    assert secrets.stat().st_mode & 0o777 == 0o600
    password = json.loads((home() / "server.json").read_text())["password"]
    assert password not in (a / ".env").read_text(), "the admin password never reaches a worktree"
    assert password not in (repo / ".git" / "treefork" / "registry.json").read_text()
    run_tf(repo, "rm", "a", "b")
    assert not (a.exists() or b.exists())
