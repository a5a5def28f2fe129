"""The admin's view of the session's embedded PostgreSQL server: what exists, whatever treefork says."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg

from testing.repo import repo_id


def home() -> Path:
    return Path(os.environ["TREEFORK_HOME"])


def server_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads((home() / "server.json").read_text())
    return state


def admin_conn(**kw: Any) -> psycopg.Connection[Any]:
    st = server_state()
    return psycopg.connect(
        host="127.0.0.1",
        port=st["port"],
        user="postgres",
        password=st["password"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
        **kw,
    )


def db_exists(name: str) -> bool:
    with admin_conn() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def dbs_with_prefix(prefix: str) -> set[str]:
    with admin_conn() as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))}


def can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def marked_databases(repo: Path) -> list[tuple[str, str]]:
    """(datname, workspace) for every database carrying this repo's mark, the root excluded."""
    prefix = f"treefork:{repo_id(repo)}:"
    with admin_conn() as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE starts_with(shobj_description(oid, 'pg_database'), %s)",
            (prefix,),
        ).fetchall()
    return [(n, c[len(prefix) :]) for n, c in rows if c[len(prefix) :] != "<root>"]


def unmarked_databases(repo: Path) -> list[str]:
    """Databases named like this repo's (tf_<repo_id>_...) that carry no mark: what a crash between
    CREATE DATABASE and COMMENT would leave, invisible to gc. There must never be any."""
    prefix = f"tf_{repo_id(repo)}_".replace("_", r"\_")
    with admin_conn() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s AND shobj_description(oid, 'pg_database') IS NULL",
            (prefix + "%",),
        ).fetchall()
    return [n for (n,) in rows]
