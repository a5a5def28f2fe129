"""treefork.backends.local.privileges: the SCRAM verifiers a fork computes while it copies (without a
connection) are the ones libpq makes, and a role given one logs in with its password."""

from __future__ import annotations

import base64
import os

import pytest

from conftest import PgServer
from treefork.backends.local import libpq, privileges
from treefork.backends.local.cluster import new_password
from treefork.backends.local.libpq import SQL, Ident, Literal


def test_a_verifier_made_without_a_connection_is_libpqs(pg_server: PgServer) -> None:
    password = new_password()
    with pg_server.admin() as conn:
        conn.execute(f"SET scram_iterations = {privileges.SCRAM_ITERATIONS}")  # libpq learns it (GUC_REPORT)
        theirs = conn.scram_verifier("anyone", password)
    assert theirs.startswith(f"SCRAM-SHA-256${privileges.SCRAM_ITERATIONS}:")
    salt = base64.b64decode(theirs.split("$")[1].split(":")[1])
    assert privileges.scram_verifier(password, salt=salt) == theirs
    assert privileges.scram_verifier(password) != theirs  # a salt of its own otherwise


def test_a_role_given_such_a_verifier_logs_in_with_its_password_only(pg_server: PgServer) -> None:
    role, password = f"tf_verifier_{os.urandom(3).hex()}", new_password()
    with pg_server.dropping_what_is_made(), pg_server.admin() as conn:
        privileges.create_role(conn, role, privileges.scram_verifier(password))
        stored = conn.one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", (role,))
        assert stored is not None and stored[0] is not None and password not in stored[0]

        def login(secret: str) -> None:
            libpq.connect(
                host="127.0.0.1",
                port=pg_server.port,
                user=role,
                password=secret,
                dbname="postgres",
                require_auth="scram-sha-256",
            ).close()

        login(password)
        with pytest.raises(libpq.PgConnectError):
            login(new_password())
        conn.execute(SQL.of("ALTER ROLE {} PASSWORD {}", Ident(role), Literal(privileges.scram_verifier(password))))
        login(password)  # a fresh salt, the same password
        other = new_password()
        privileges.set_verifier(conn, role, privileges.scram_verifier(other))  # how a fork sets its passwords
        login(other)
        with pytest.raises(libpq.PgConnectError):
            login(password)
        with pytest.raises(libpq.PgError):
            privileges.set_verifier(conn, role + "_missing", privileges.scram_verifier(other))
        with pytest.raises(ValueError):
            privileges.set_verifier(conn, role, "md5" + "0" * 32)  # nothing but scram_verifier's


def test_only_treefork_s_own_passwords(pg_server: PgServer) -> None:
    with pytest.raises(ValueError):
        privileges.scram_verifier("pässwörd")  # SASLprep would change it: libpq's job, not this one's
