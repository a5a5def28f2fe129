"""treefork.backends.libpq, the one seam to PostgreSQL, against the session's real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tf_helpers import admin_conn
from treefork.backends import libpq
from treefork.backends.libpq import SQL, Ident, Literal

NASTY = ['a"b', "semi;colon", "it's", "ünïcødé", "$(touch x)", "back\\slash", "--comment", "x" * 63]


def _connect() -> libpq.Connection:
    st = json.loads((Path(os.environ["TREEFORK_HOME"]) / "server.json").read_text())
    return libpq.connect(host="127.0.0.1", port=st["port"], user="postgres", password=st["password"], dbname="postgres")


def test_identifiers_and_literals_round_trip(tf_repo: Path) -> None:
    with _connect() as conn:  # temporary tables: gone when the connection closes
        for i, name in enumerate(NASTY):
            conn.execute(SQL.of("CREATE TEMP TABLE {} (x int)", Ident(name)))
            conn.execute(SQL.of("COMMENT ON TABLE {} IS {}", Ident(name), Literal(name)))
            assert conn.one("SELECT obj_description(oid, 'pg_class') FROM pg_class WHERE relname = $1", (name,)) == (
                name,
            ), i
        assert conn.one("SELECT $1::text, $2::int, $3::text", ("a'b", 7, None)) == ("a'b", "7", None)


def test_errors_carry_the_sqlstate_and_notices_stay_quiet(tf_repo: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with _connect() as conn:
        conn.execute(SQL.of("DROP DATABASE IF EXISTS {}", Ident("tf_never_there")))  # a NOTICE libpq would print
        with pytest.raises(libpq.PgError) as err:
            conn.execute(SQL.of("CREATE DATABASE {}", Ident("postgres")))
        assert err.value.sqlstate == libpq.DUPLICATE_DATABASE
        assert not conn.closed
        assert conn.one("SELECT 1") == ("1",)
    assert "NOTICE" not in capfd.readouterr().err
    with pytest.raises(ValueError):
        SQL.of("SELECT {} {}", Ident("a"))


def test_a_wrong_password_is_a_connect_error_without_the_password(tf_repo: Path) -> None:
    st = json.loads((Path(os.environ["TREEFORK_HOME"]) / "server.json").read_text())
    with pytest.raises(libpq.PgConnectError) as err:
        libpq.connect(
            host="127.0.0.1", port=st["port"], user="postgres", password="wrong-secret-123", dbname="postgres"
        )
    assert "password authentication failed" in err.value.message and "wrong-secret-123" not in str(err.value)
    with admin_conn() as conn:  # psycopg, independently: the server is fine
        assert conn.execute("SELECT 1").fetchone() == (1,)
