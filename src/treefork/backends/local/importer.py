"""Copying a database logically (pg_dump | pg_restore): an existing dev database into a root, then a freeze;
a busy parent into a child on a server the user runs.

The wheel's pg_dump 18 reads any server from PostgreSQL 9.2 on. Passwords travel in each process's own
environment (PGPASSWORD), never on a command line, where every local user could read them in `ps`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import IO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from treefork import proc
from treefork.backends.local.cluster import Cluster, ClusterRecord
from treefork.backends.local.dist import wheel_bin_dir
from treefork.errors import BackendError, FatalError, ProcError
from treefork.redact import register


def import_into(url: str, cluster: Cluster, rec: ClusterRecord, *, progress: Callable[[str], None]) -> None:
    """The user's dev database restored by the role, superuser for the restore only (no one else has its
    password yet), so that it owns every object, those of untrusted extensions (pgvector) included."""
    from treefork.backends.local import admin_extensions, privileges

    target = f"postgresql://{rec.role}:{quote(rec.role_password, safe='')}@127.0.0.1:{rec.port}/{rec.dbname}"
    with cluster.admin(rec) as conn:
        privileges.elevate(conn, rec.role)
    try:
        bins = rec.binaries()
        import_database(url, target, progress=progress, embedded=bins.embedded, target_major=bins.major)
    finally:
        with cluster.admin(rec) as conn:
            privileges.downgrade(conn, rec.role, rec.dbname)
    admin_extensions.after_import(rec)  # PostGIS in template1 too, for a database the role makes
    freeze(cluster, rec)


def import_database(
    url: str,
    target_url: str,
    *,
    progress: Callable[[str], None],
    embedded: bool = False,
    target_major: int | None = None,
) -> None:
    """An existing database copied into a new root once, owned by the role of target_url. embedded: the root
    is a cluster of the embedded PostgreSQL (else a database on a server the user runs, or a cluster on the
    machine's own binaries); target_major: the root's major version."""
    register(url)
    progress(f"importing {safe_url(url)} into the root (pg_dump | pg_restore)")
    try:
        copy_database(url, target_url, target_major=target_major)
    except ProcError as e:
        missing = MISSING_EXTENSION.search(e.err)
        if missing is not None:
            raise _missing_extension(url, missing.group(1), embedded=embedded) from None
        raise _import_failed(url, e) from None
    except FatalError as e:
        raise _import_failed(url, e) from None


# pg_restore's report of a CREATE EXTENSION the server has no control file for
MISSING_EXTENSION = re.compile(r'ERROR:\s+extension ("[^"]+") is not available')


def _missing_extension(url: str, extension: str, *, embedded: bool) -> BackendError:
    if embedded:
        lacks = "the embedded PostgreSQL does not have (docs/extensions.md lists those it has)"
        fix = "branch on a PostgreSQL server that has it (`treefork init --server-url URL`)"
    else:
        lacks, fix = "the server of the root does not have", "install it on that server"
    return BackendError(
        f"import from {safe_url(url)} failed: it uses the extension {extension}, which {lacks}",
        hint=f"{fix}, or start with an empty root (`treefork init --no-import`)",
    )


def _import_failed(url: str, e: FatalError) -> BackendError:
    return BackendError(
        f"import from {safe_url(url)} failed: {e.message}",
        hint="check the URL and that its server is up, or `treefork init --no-import` to start with an empty root",
    )


def copy_database(source_url: str, target_url: str, *, target_major: int | None = None) -> None:
    """pg_dump (one consistent snapshot) | pg_restore, the objects owned by target_url's role. Each side's
    password goes in its own process's environment. target_major: the target server's major version, when it
    may be older than the wheel's tools (a server the user runs)."""
    tools = wheel_bin_dir()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "10", "LC_ALL": "C"}
    source, source_password = split_password(source_url)
    target, target_password = split_password(target_url)
    env = {**base, **({"PGPASSWORD": source_password} if source_password else {})}
    second_env = {**base, **({"PGPASSWORD": target_password} if target_password else {})}
    if target_major is not None and target_major < NEWEST_SETTING_MAJOR:
        # pg_restore 18 starts every restore with settings of its own version (`SET transaction_timeout = 0`),
        # which an older server refuses: a plain script, its preamble cut to what that server knows, into psql
        proc.pipe(
            [str(tools / "pg_dump"), "--format=plain", "--no-owner", "--no-acl", f"--dbname={source}"],
            [str(tools / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--output=/dev/null", f"--dbname={target}"],
            env=env,
            second_env=second_env,
            through=lambda dump, script: older_preamble(dump, script, major=target_major),
        )
        return
    proc.pipe(
        [str(tools / "pg_dump"), "--format=custom", "--no-owner", "--no-acl", f"--dbname={source}"],
        [str(tools / "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={target}"],
        env=env,
        second_env=second_env,
    )


# The session settings a dump's preamble sets that older servers do not have, and the major that added each.
NEWER_SETTINGS = {b"transaction_timeout": 17}
NEWEST_SETTING_MAJOR = max(NEWER_SETTINGS.values())


def older_preamble(dump: IO[bytes], script: IO[bytes], *, major: int) -> None:
    """Copy a plain dump, leaving out of its preamble (the SETs before the first object; never a line of data)
    the settings a server of that major version does not know."""
    for line in dump:
        if line.startswith(b"-- Name: "):  # the first object: the preamble is over
            script.write(line)
            break
        setting = SET_LINE.fullmatch(line.rstrip(b"\r\n"))
        if setting is None or NEWER_SETTINGS.get(setting.group(1), 0) <= major:
            script.write(line)
    for chunk in iter(lambda: dump.read(1 << 16), b""):
        script.write(chunk)


SET_LINE = re.compile(rb"SET ([a-z_]+) = [^;]*;")


FREEZE_AFTER_ROWS = 10_000


def freeze(cluster: Cluster, rec: ClusterRecord, *, only_if_needed: bool = False) -> list[str]:
    """VACUUM (FREEZE): with data checksums on (PostgreSQL 18's default), the first read of a page whose hint
    bits are unset rewrites it (and WAL-logs it whole), so a fork of an unvacuumed table stops sharing disk as
    soon as it is read. only_if_needed: just the tables with many rows written since their last vacuum (the
    check is one query). Returns the tables frozen ("*" for all)."""
    from treefork.backends.local import libpq

    with libpq.connect(
        host="127.0.0.1",
        port=rec.port,
        user="postgres",
        password=rec.admin_password,
        dbname=rec.dbname,
        require_auth="scram-sha-256",
    ) as conn:
        if not only_if_needed:
            conn.execute("VACUUM (FREEZE, ANALYZE)")
            return ["*"]
        from treefork.backends.local.libpq import SQL, Ident

        rows = conn.execute(
            "SELECT schemaname, relname FROM pg_stat_user_tables WHERE n_ins_since_vacuum + n_dead_tup > $1",
            (FREEZE_AFTER_ROWS,),
        )
        tables = [(schema, table) for schema, table in rows if schema and table]
        for schema, table in tables:
            conn.execute(SQL.of("VACUUM (FREEZE) {}.{}", Ident(schema), Ident(table)))
        return [f"{schema}.{table}" for schema, table in tables]


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"
