"""Neon connection strings: from a create response's `connection_uris`, or from the branch's endpoint,
database, role and revealed password. The password is registered with treefork.redact at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from treefork.backends.base import Connection, DbBranch
from treefork.errors import BackendError
from treefork.redact import register

if TYPE_CHECKING:
    from treefork.backends.neon import NeonBackend


@dataclass(frozen=True)
class NeonConnection(Connection):
    """Also what Neon's own `neon env pull` writes, and the worktree's `.neon` context for the Neon CLI."""

    extra_env: dict[str, str] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)


def from_create(created: dict[str, Any], *, pooled: bool, database: str, role: str) -> Connection | None:
    for uri in created.get("connection_uris") or []:
        p = uri.get("connection_parameters") or {}
        if (database and p.get("database") != database) or (role and p.get("role") != role):
            continue
        return make_connection(
            p["role"], p["password"], p["database"], p["host"], p.get("pooler_host") or p["host"], pooled=pooled
        )
    return None


def make_connection(
    role: str, password: str, database: str, host: str, pooler_host: str, *, pooled: bool
) -> Connection:
    register(password)
    auth = f"{quote(role, safe='')}:{quote(password, safe='')}"
    direct = f"postgresql://{auth}@{host}/{quote(database, safe='')}?sslmode=require"
    pooled_url = f"postgresql://{auth}@{pooler_host}/{quote(database, safe='')}?sslmode=require"
    return Connection(url=pooled_url if pooled else direct, direct_url=direct)


def fetch_connection(nb: NeonBackend, branch: DbBranch) -> Connection:
    """The branch's URLs from its endpoint, database, role and revealed password (4 requests)."""
    base = f"{nb._base}/branches/{branch.id}"
    endpoint = next(
        (e for e in nb.api.get(f"{base}/endpoints").get("endpoints", []) if e.get("type") == "read_write"), None
    )
    if endpoint is None:
        raise BackendError(
            f"Neon branch {branch.name} has no read_write compute",
            hint="add a compute to the branch in the Neon console",
        )
    databases = nb.api.get(f"{base}/databases").get("databases", [])
    db = (
        next((d for d in databases if d["name"] == nb._database), None)
        if nb._database
        else (databases[0] if len(databases) == 1 else None)
    )
    if db is None:
        names = ", ".join(d["name"] for d in databases) or "none"
        raise BackendError(
            f"cannot choose a database on Neon branch {branch.name} (found: {names})",
            hint="set database = '...' in the [neon] table of treefork.toml",
        )
    role = nb._role or db["owner_name"]
    password = nb.api.get(f"{base}/roles/{quote(role, safe='')}/reveal_password")["password"]
    host = endpoint["host"]
    pooler = host.replace(endpoint["id"], endpoint["id"] + "-pooler", 1)
    return make_connection(role, password, db["name"], host, pooler, pooled=nb._pooled)
