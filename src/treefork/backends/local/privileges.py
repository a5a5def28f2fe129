"""What a workspace's role may do in its cluster, and the secrets a cluster must not carry over.

The role in a workspace's URL owns its database (and so its `public` schema, through pg_database_owner), may
create databases (test runners' `test_…`, Prisma's shadow database) and trusted extensions, and nothing more:
no superuser, so no `COPY … PROGRAM`, no server files, no `ALTER SYSTEM`, no untrusted code. treefork's own
admin (`postgres`, superuser) has a password only treefork knows (docs/local-backend.md, "Trust boundary").
"""

from __future__ import annotations

from treefork.backends.local.cluster import ADMIN_USER
from treefork.backends.local.libpq import SQL, Connection, Ident, Literal

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEROLE CREATEDB"


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
