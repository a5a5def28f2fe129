"""Extensions treefork creates as its admin, so that the workspace's role (no superuser) never has to: treefork.toml's
`extensions` (PostGIS), and the untrusted ones an imported dev database brought.

Each goes in a cluster's database and its template1 (a database the role makes, a test runner's, is a copy of
template1). `init` makes them in the root's template1 before the root's database is copied from it. An
extension listed later gets them from `treefork sync` or `treefork doctor --fix`, in the root and in every
workspace's cluster (started if need be, as any command that needs a cluster starts it); once every cluster has
them, that is recorded in the backend's settings, and the next `sync` connects to nothing. A fork copies them
with the rest of its parent.

Nothing of treefork's own is added to a database for this (no event trigger to rephrase PostgreSQL's refusal):
`pg_dump --schema-only` writes such objects into an app's own schema file (Rails' `db/structure.sql`), where
they fail on every other machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from treefork.backends.local import EXTENSIONS_DONE, libpq
from treefork.backends.local.cluster import ADMIN_USER, HOST, READY, Cluster, ClusterRecord
from treefork.backends.local.libpq import SQL, Ident, Literal
from treefork.backends.local.store import ROOT, ClusterStore

SNAPSHOT = "@snapshot-"  # in the workspace of a merge's snapshot cluster (clusters.py)

DONE_KEY = EXTENSIONS_DONE


@dataclass(frozen=True)
class Gap:
    """What one database of one cluster lacks."""

    workspace: str  # "root" or the workspace's name
    database: str
    extensions: tuple[str, ...]

    def describe(self) -> str:
        """What doctor reports."""
        return f"extension {', '.join(self.extensions)} listed but missing in {self.place()}"

    def made(self) -> str:
        """What sync reports once it made them."""
        return f"created extension {', '.join(self.extensions)} in {self.place()}"

    def place(self) -> str:
        where = "the root" if self.workspace == "root" else f"workspace {self.workspace}"
        return f"{where} (database {self.database})"


def done_marker(names: Iterable[str]) -> list[str]:
    return sorted(set(names))


def in_template1(rec: ClusterRecord, names: tuple[str, ...]) -> None:
    """At init: treefork.toml's extensions in template1, which the root's database is then copied from."""
    with _admin(rec, "template1") as conn:
        _fill(conn, names)


def gaps(rec: ClusterRecord, names: tuple[str, ...], *, workspace: str) -> list[Gap]:
    """What the cluster's database and template1 lack of names (`treefork doctor`)."""
    return _each_database(rec, names, workspace=workspace, make=False)


def fill(rec: ClusterRecord, names: tuple[str, ...], *, workspace: str) -> list[Gap]:
    """What was missing in the cluster's database and template1, now made (as the admin; idempotent)."""
    return _each_database(rec, names, workspace=workspace, make=True)


def _each_database(rec: ClusterRecord, names: tuple[str, ...], *, workspace: str, make: bool) -> list[Gap]:
    found = []
    for database in (rec.dbname, "template1"):
        with _admin(rec, database) as conn:
            gap = _gap(conn, names, workspace=workspace, database=database)
            if gap is not None and make:
                _fill(conn, gap.extensions)
        if gap is not None:
            found.append(gap)
    return found


def after_import(rec: ClusterRecord) -> list[str]:
    """After `init --import`: the untrusted extensions the dev database brought (PostGIS) made in template1 too, at
    the root's versions, so a database the role makes (a test runner's) has them as the root does."""
    with _admin(rec, rec.dbname) as conn:
        rows = conn.execute(
            "SELECT e.extname, e.extversion FROM pg_extension e JOIN pg_available_extension_versions v "
            "ON v.name = e.extname AND v.version = e.extversion WHERE NOT v.trusted ORDER BY e.extname"
        )
    brought = [(str(name), str(version)) for name, version in rows]
    with _admin(rec, "template1") as conn:
        for name, version in brought:
            conn.execute(SQL.of("CREATE EXTENSION IF NOT EXISTS {} VERSION {} CASCADE", Ident(name), Literal(version)))
    return [name for name, _ in brought]


def of_repo(store: ClusterStore, repo_id: str) -> list[tuple[str, Cluster, ClusterRecord]]:
    """The root's and every workspace's finished cluster (a merge's snapshot is none of them), root first."""
    found = [
        ("root" if rec.workspace == ROOT else rec.workspace, cluster, rec)
        for cluster, rec in store.of_repo(repo_id)
        if rec.status == READY and SNAPSHOT not in rec.workspace
    ]
    return sorted(found, key=lambda item: (item[0] != "root", item[0]))


def running(cluster: Cluster) -> bool:
    return cluster.postmaster_pid() is not None


def _gap(conn: libpq.Connection, names: tuple[str, ...], *, workspace: str, database: str) -> Gap | None:
    have = {str(n) for (n,) in conn.execute("SELECT extname FROM pg_extension")}
    missing = tuple(n for n in names if n not in have)
    return Gap(workspace, database, missing) if missing else None


def _fill(conn: libpq.Connection, names: tuple[str, ...]) -> None:
    for name in names:
        conn.execute(SQL.of("CREATE EXTENSION IF NOT EXISTS {} CASCADE", Ident(name)))


def _admin(rec: ClusterRecord, database: str) -> libpq.Connection:
    return libpq.connect(
        host=HOST,
        port=rec.port,
        user=ADMIN_USER,
        password=rec.admin_password,
        dbname=database,
        connect_timeout=10,
        require_auth="scram-sha-256",
    )
