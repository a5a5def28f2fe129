"""treefork.backends.local.libpq, the one seam to PostgreSQL, against a real PostgreSQL 18 server."""

from __future__ import annotations

import psycopg
import pytest

from conftest import PgServer
from treefork.backends.local import libpq
from treefork.backends.local.libpq import SQL, Ident, Literal

NASTY = ['a"b', "semi;colon", "it's", "ünïcødé", "$(touch x)", "back\\slash", "--comment", "x" * 63]


def _connect(pg: PgServer) -> libpq.Connection:
    return libpq.connect(host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname="postgres")


def test_identifiers_and_literals_round_trip(pg_server: PgServer) -> None:
    with _connect(pg_server) as conn:  # temporary tables: gone when the connection closes
        for i, name in enumerate(NASTY):
            conn.execute(SQL.of("CREATE TEMP TABLE {} (x int)", Ident(name)))
            conn.execute(SQL.of("COMMENT ON TABLE {} IS {}", Ident(name), Literal(name)))
            assert conn.one("SELECT obj_description(oid, 'pg_class') FROM pg_class WHERE relname = $1", (name,)) == (
                name,
            ), i
        assert conn.one("SELECT $1::text, $2::int, $3::text", ("a'b", 7, None)) == ("a'b", "7", None)


def test_errors_carry_the_sqlstate_and_notices_stay_quiet(
    pg_server: PgServer, capfd: pytest.CaptureFixture[str]
) -> None:
    with _connect(pg_server) as conn:
        conn.execute(SQL.of("DROP DATABASE IF EXISTS {}", Ident("tf_never_there")))  # a NOTICE libpq would print
        with pytest.raises(libpq.PgError) as err:
            conn.execute(SQL.of("CREATE DATABASE {}", Ident("postgres")))
        assert err.value.sqlstate == libpq.DUPLICATE_DATABASE
        assert not conn.closed
        assert conn.one("SELECT 1") == ("1",)
    assert "NOTICE" not in capfd.readouterr().err
    with pytest.raises(ValueError):
        SQL.of("SELECT {} {}", Ident("a"))


def test_a_wrong_password_is_a_connect_error_without_the_password(pg_server: PgServer) -> None:
    with pytest.raises(libpq.PgConnectError) as err:
        libpq.connect(
            host="127.0.0.1", port=pg_server.port, user="postgres", password="wrong-secret-123", dbname="postgres"
        )
    assert "password authentication failed" in err.value.message and "wrong-secret-123" not in str(err.value)
    with psycopg.connect(pg_server.url()) as conn:  # psycopg, independently: the server is fine
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_library_is_published_only_with_every_signature_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads' first connections at once (a fork's freeze check beside its session): the one that finds
    the library loaded must find it ready, or a pointer comes back as a C int and the process crashes."""
    seen: list[object] = []

    class Watching(dict):  # type: ignore[type-arg]
        def items(self):  # type: ignore[no-untyped-def]
            for item in super().items():
                seen.append(libpq._LIB)  # what another thread would find meanwhile
                yield item

    monkeypatch.setattr(libpq, "_LIB", None)
    monkeypatch.setattr(libpq, "_SIGNATURES", Watching(libpq._SIGNATURES))
    lib = libpq._library()
    assert seen and all(found is None for found in seen)
    assert lib.PQconnectdbParams.restype is not None
