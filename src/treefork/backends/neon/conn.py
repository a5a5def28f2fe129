"""Neon connection strings: from a create response's `connection_uris`, or from the branch's endpoint,
database, role and revealed password. The password is registered with treefork.redact at once.

`connection_uris` is optional in the spec: without it, a new branch's URLs come from the create response's
required `endpoints` and `databases` and the role's password, revealed beside the operation's polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from treefork.backends.base import Connection, DbBranch
from treefork.backends.neon.api import NeonApi
from treefork.errors import BackendError
from treefork.redact import register

if TYPE_CHECKING:
    from treefork.backends.neon import NeonBackend


def from_create(created: dict[str, Any], *, pooled: bool, database: str, role: str) -> Connection | None:
    for uri in created.get("connection_uris") or []:
        p = uri.get("connection_parameters") or {}
        if (database and p.get("database") != database) or (role and p.get("role") != role):
            continue
        return make_connection(
            p["role"], p["password"], p["database"], p["host"], p.get("pooler_host") or p["host"], pooled=pooled
        )
    return None


@dataclass(frozen=True)
class Target:
    """Where a new branch is reached, from the create response's required fields; the password is missing."""

    path: str  # the role's reveal_password
    role: str
    database: str
    host: str
    pooler_host: str

    def connection(self, password: str, *, pooled: bool) -> Connection:
        return make_connection(self.role, password, self.database, self.host, self.pooler_host, pooled=pooled)


def target_or_none(base: str, created: dict[str, Any], *, database: str, role: str) -> Target | None:
    """The create response's read_write endpoint and the one database (or the configured one) with its
    owner (or the configured role); None when it does not say, and `connection()` asks Neon instead."""
    endpoint = _read_write(created.get("endpoints") or [])
    db = _choose_database(created.get("databases") or [], database)
    if endpoint is None or db is None:
        return None
    name = role or db["owner_name"]
    path = f"{base}/branches/{created['branch']['id']}/roles/{quote(name, safe='')}/reveal_password"
    return Target(path, name, db["name"], endpoint["host"], _pooler(endpoint))


class Reveal:
    """The password of a new branch's role, asked for beside the operation's polls: once, without retries
    (a 423 while the operation runs is answered by the next round); `password()` asks again if need be."""

    def __init__(self, api: NeonApi, target: Target) -> None:
        self.api, self.target = api, target
        self.value: str | None = None

    def attempt(self) -> bool:
        if self.value is None:
            try:
                self.value = str(self.api.get(self.target.path, attempts=1)["password"])
            except BackendError:  # 423 while the operation runs, or anything the retrying ask reports
                return False
        return True

    def password(self) -> str:
        if self.value is None:
            self.value = str(self.api.get(self.target.path)["password"])
        return self.value


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
    endpoint = _read_write(nb.api.get(f"{base}/endpoints").get("endpoints", []))
    if endpoint is None:
        raise BackendError(
            f"Neon branch {branch.name} has no read_write compute",
            hint="add a compute to the branch in the Neon console",
        )
    databases = nb.api.get(f"{base}/databases").get("databases", [])
    db = _choose_database(databases, nb._database)
    if db is None:
        names = ", ".join(d["name"] for d in databases) or "none"
        raise BackendError(
            f"cannot choose a database on Neon branch {branch.name} (found: {names})",
            hint="set database = '...' in the [neon] table of treefork.toml",
        )
    role = nb._role or db["owner_name"]
    password = nb.api.get(f"{base}/roles/{quote(role, safe='')}/reveal_password")["password"]
    return make_connection(role, password, db["name"], endpoint["host"], _pooler(endpoint), pooled=nb._pooled)


def _read_write(endpoints: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((e for e in endpoints if e.get("type") == "read_write"), None)


def _choose_database(databases: list[dict[str, Any]], configured: str) -> dict[str, Any] | None:
    """The configured database, or the branch's only one."""
    if configured:
        return next((d for d in databases if d["name"] == configured), None)
    return databases[0] if len(databases) == 1 else None


def _pooler(endpoint: dict[str, Any]) -> str:
    """Neon's pooled host: the endpoint id with `-pooler` appended (CONTRACTS A)."""
    return str(endpoint["host"]).replace(endpoint["id"], endpoint["id"] + "-pooler", 1)
