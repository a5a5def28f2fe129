"""`init --server-url` on a server the user already runs, of any supported major version (15 and later): the
import from its dev database, `merge` with a migrate command (a snapshot, restored on failure), and a role of its
own for each workspace, which can touch no other database of the repo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, run_tf
from testing.older_server import OlderServer, older_server
from tf_helpers import new


@pytest.fixture(scope="module")
def pg15() -> Iterator[OlderServer]:
    with older_server(15) as server:
        yield server


def _dev_database(server: OlderServer, name: str) -> str:
    with server.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
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
