"""What a workspace's role may do in its cluster, and the secrets a cluster must not carry over.

The role in a workspace's URL owns its database (and so its `public` schema, through pg_database_owner), may
create databases (test runners' `test_…`, Prisma's shadow database) and trusted extensions, and nothing more:
no superuser, so no `COPY … PROGRAM`, no server files, no `ALTER SYSTEM`, no untrusted code. treefork's own
admin (`postgres`, superuser) has a password only treefork knows (docs/local-backend.md, "Trust boundary").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from treefork.backends.local.cluster import ADMIN_USER
from treefork.backends.local.libpq import SQL, Connection, Ident, Literal, PgError

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEROLE CREATEDB"
# PBKDF2 rounds in the verifiers of treefork's own passwords (PostgreSQL's default is 4096). The rounds slow down
# guessing a password from a stolen verifier; these passwords are 144 random bits (cluster.new_password), which
# no number of guesses reaches, so the rounds only cost every login, treefork's and the app's (about 5 ms each on
# either side at 4096, 0.1 ms at 64). A password a user sets in a cluster keeps the server's default.
SCRAM_ITERATIONS = 64


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for password (RFC 5803's format, as libpq's
    PQencryptPasswordConn makes it: a 16-byte random salt; SCRAM_ITERATIONS rounds), computed here without a connection, so
    that a fork computes its passwords' verifiers while it copies. Only for treefork's own passwords: hex
    (cluster.new_password), which SASLprep leaves as they are. salt: a given one (tests compare with libpq's)."""
    if not (password.isascii() and password.isalnum()):
        raise ValueError("scram_verifier takes treefork's own (hex) passwords only")
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def set_verifier(conn: Connection, role: str, verifier: str) -> None:
    """What `ALTER ROLE role PASSWORD verifier` stores, without what that statement adds: its check that the
    verifier is not the empty password's, a PBKDF2 of 4096 rounds on the server (5-10 ms a role, twice a fork).
    A plain UPDATE of pg_authid by treefork's admin, a superuser; the catalog caches are told, as of any
    update of a catalog row. Only for scram_verifier's verifiers of treefork's own random passwords."""
    if not verifier.startswith(f"SCRAM-SHA-256${SCRAM_ITERATIONS}:"):
        raise ValueError("set_verifier takes scram_verifier's verifiers only")
    if not conn.execute("UPDATE pg_authid SET rolpassword = $1 WHERE rolname = $2 RETURNING 1", (verifier, role)):
        raise PgError(f'role "{role}" does not exist', sqlstate="42704")


def create_role(conn: Connection, role: str, verifier: str) -> None:
    conn.execute(SQL.of(f"CREATE ROLE {{}} {ROLE_ATTRIBUTES} PASSWORD {{}}", Ident(role), Literal(verifier)))


def downgrade(conn: Connection, role: str, dbname: str) -> None:
    """The role as create_role makes it, in a cluster an older treefork made (where it was superuser): no
    superuser attribute, no membership in any other role (pg_execute_server_program, pg_read_server_files, …),
    and no other role but treefork's admin left superuser. The role keeps owning its database."""
    conn.execute(SQL.of(f"ALTER ROLE {{}} {ROLE_ATTRIBUTES}", Ident(role)))
    for (other,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper AND rolname <> $1", (ADMIN_USER,)):
        conn.execute(SQL.of("ALTER ROLE {} NOSUPERUSER", Ident(str(other))))
    granted = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1",
        (role,),
    )
    for (group,) in granted:
        conn.execute(SQL.of("REVOKE {} FROM {}", Ident(str(group)), Ident(role)))
    if conn.one("SELECT 1 FROM pg_database WHERE datname = $1", (dbname,)):
        conn.execute(SQL.of("ALTER DATABASE {} OWNER TO {}", Ident(dbname), Ident(role)))


def elevate(conn: Connection, role: str) -> None:
    """Superuser for a moment, before anyone but treefork knows the role's password: `init` restores the user's
    own dev database as the role, untrusted extensions (pgvector) included, so that it owns every object."""
    conn.execute(SQL.of("ALTER ROLE {} SUPERUSER", Ident(role)))


def forget_old_passwords(conn: Connection) -> None:
    """ALTER ROLE … PASSWORD leaves the old row in pg_authid's file as a dead tuple: in a fork, the parent's
    verifiers (with which a program squatting the parent's port could pass SCRAM); in a new root, the pristine
    cluster's. VACUUM FULL writes the catalog anew, with the live rows only, and empties the old file (about
    1 ms on tmpfs, 6-30 ms on a busy ext4: its fsync). The WAL keeps such records until its segments are reused;
    only the server's OS user reads pg_wal, and it reads every cluster's files anyway."""
    conn.execute("VACUUM FULL pg_authid")
