"""`init --server-url` on a server the user already runs, of any supported major version (15 and later): the
import from its dev database, `merge` with a migrate command (a snapshot, restored on failure), and a role of its
own for each workspace, which can touch no other database of the repo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from conftest import db_url, git, run_tf
from testing.cli import new
from testing.older_server import OlderServer


def _dev_database(server: OlderServer, name: str) -> str:
    server.fresh_database(name)
    with server.admin(name) as conn:
        conn.execute("CREATE TABLE bakery (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO bakery VALUES (1, 'rye'), (2, 'spelt'), (3, 'oat')")
    return server.url(name)


def test_init_server_url_imports_a_dev_database_on_postgresql_15(repo: Path, pg15: OlderServer) -> None:
    """bakerydemo's dev database on PostgreSQL 15: PostgreSQL 18's pg_dump | pg_restore sent it
    `SET transaction_timeout = 0`, which 15 does not know, and init failed."""
    dev = _dev_database(pg15, "bakery_dev")
    (repo / ".env").write_text(f"DATABASE_URL={dev}\n")
    run_tf(repo, "init", "--server-url", pg15.url(), "--import")
    with psycopg.connect(db_url(repo)) as conn:
        assert conn.execute("SELECT name FROM bakery ORDER BY id").fetchall() == [("rye",), ("spelt",), ("oat",)]
    wt = new(repo, "feature")
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT count(*) FROM bakery").fetchone() == (3,)
    with psycopg.connect(dev) as conn:
        assert conn.execute("SELECT count(*) FROM bakery").fetchone() == (3,), "the source is only read"
    run_tf(repo, "rm", "feature")


MIGRATION = """import os, sys, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    c.execute("ALTER TABLE bakery ADD COLUMN price int")
    c.execute("UPDATE bakery SET name = 'clobbered'")
sys.exit(4 if os.environ.get("MIGRATION_MODE") == "fail" else 0)
"""


def _migrating_repo(repo: Path, server: OlderServer) -> Path:
    (repo / ".env").write_text(f"DATABASE_URL={_dev_database(server, 'bakery_merge')}\n")
    (repo / "migrate.py").write_text(MIGRATION)
    (repo / "treefork.toml").write_text(f"migrate = [{json.dumps(sys.executable)}, 'migrate.py']\n")
    git(repo, "add", "migrate.py", "treefork.toml")
    git(repo, "commit", "-q", "-m", "migration")
    run_tf(repo, "init", "--server-url", server.url(), "--import")
    a = new(repo, "a")
    (a / "feature.txt").write_text("work\n")
    git(a, "add", "feature.txt")
    git(a, "commit", "-q", "-m", "feature")
    return a


def _rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM bakery ORDER BY id").fetchall()


@pytest.mark.parametrize("dev_server_connected", [False, True], ids=["idle", "dev-server-connected"])
def test_merge_with_a_migrate_command_migrates_main_on_a_server_you_run(
    repo: Path, pg15: OlderServer, *, dev_server_connected: bool
) -> None:
    """`merge` with `migrate` was refused with `--server-url`. The snapshot is a TEMPLATE copy, or a logical
    one while main's dev server holds a connection (which is left alone)."""
    a = _migrating_repo(repo, pg15)
    main = db_url(repo)
    holder = psycopg.connect(main, autocommit=True) if dev_server_connected else None
    try:
        run_tf(repo, "merge", "a")
        if holder is not None:
            assert holder.execute("SELECT count(*) FROM bakery").fetchone() == (3,), "the dev server stays connected"
    finally:
        if holder is not None:
            holder.close()
    assert _rows(main) == [(1, "clobbered", None), (2, "clobbered", None), (3, "clobbered", None)]
    assert (repo / "feature.txt").exists() and not a.exists()
    with pg15.admin() as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%snapshot%'").fetchall()
    assert left == [], "the snapshot is dropped"


def test_a_failed_migration_on_a_server_you_run_puts_main_back(repo: Path, pg15: OlderServer) -> None:
    a = _migrating_repo(repo, pg15)
    main = db_url(repo)
    head = git(repo, "rev-parse", "HEAD").stdout
    r = run_tf(repo, "merge", "a", env={"MIGRATION_MODE": "fail"}, check=False)
    assert r.rc == 1 and "exit code 4" in r.err
    assert db_url(repo) == main, "main's URL is unchanged"
    assert _rows(main) == [(1, "rye"), (2, "spelt"), (3, "oat")], "its data is as before the migration"
    assert git(repo, "rev-parse", "HEAD").stdout == head and a.is_dir()
    with pg15.admin() as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE '%snapshot%' OR datname LIKE '%rolled%'"
        ).fetchall()
    assert left == []


def test_a_workspace_url_can_drop_no_other_database_of_the_repo(repo: Path, pg15: OlderServer) -> None:
    """Red-team round 3, finding 18: every workspace's URL was the repo's one role, owner of the root and of
    every sibling; one agent dropped a sibling's database."""
    (repo / ".env").write_text(f"DATABASE_URL={_dev_database(pg15, 'bakery_roles')}\n")
    run_tf(repo, "init", "--server-url", pg15.url(), "--import")
    s1, s2 = new(repo, "s1"), new(repo, "s2")
    users = {urlsplit(u).username for u in (db_url(repo), db_url(s1), db_url(s2))}
    assert len(users) == 3, "main, s1 and s2 each have a role of their own"
    with psycopg.connect(db_url(s1), autocommit=True) as conn:
        conn.execute("ALTER TABLE bakery ADD COLUMN price int")  # it owns what it was forked with
        conn.execute("UPDATE bakery SET price = 1")
        conn.execute("CREATE DATABASE s1_test")  # a test runner's database (Django's `manage.py test`)
        conn.execute("DROP DATABASE s1_test")
        for other in (db_url(s2), db_url(repo)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(urlsplit(other).path[1:])))
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(db_url(s1).replace(urlsplit(db_url(s1)).path, urlsplit(db_url(s2)).path)).close()
    assert _rows(db_url(s2)) == [(1, "rye"), (2, "spelt"), (3, "oat")] == _rows(db_url(repo))
    s3 = Path(json.loads(run_tf(repo, "new", "s3", "--from", "s1", "--json").out)["path"])
    assert _rows(db_url(s3)) == [(1, "rye", 1), (2, "spelt", 1), (3, "oat", 1)]
    with psycopg.connect(db_url(s3), autocommit=True) as conn:
        conn.execute("ALTER TABLE bakery DROP COLUMN price")
    assert _rows(db_url(s1))[0] == (1, "rye", 1), "the parent's copy is untouched"
    role_s1 = urlsplit(db_url(s1)).username
    run_tf(repo, "rm", "s3", "s2", "s1")
    with pg15.admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role_s1,)).fetchone() is None
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (urlsplit(db_url(repo)).path[1:],)
        ).fetchone()
    assert owner == (urlsplit(db_url(repo)).username,), "the repo's role keeps the root"
