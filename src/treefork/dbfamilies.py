"""An app's split database settings: families of variables that hold one database by parts.

A family holds a database's host, port, user, password and name in variables of their own (libpq's
`PGHOST`/`PGPORT`/..., `POSTGRES_SERVER`/..., Laravel's `DB_*`, `DATABASE_HOST`/..., or one named in
treefork.toml's `database_parts`); pointing it at another database keeps the app's own spelling, as
dbsettings.py does for URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from treefork.dbsettings import DIRECT_URL_VARS, POOLED_URL_VARS, parse, spelled_host, target

PARTS = ("host", "port", "user", "password", "dbname")


LIBPQ_FAMILY = "libpq (PG*)"


@dataclass(frozen=True)
class Family:
    """Variables that hold one database's settings by parts. Each part lists its spellings; the first is the
    one added when the file has none of them."""

    name: str
    parts: Mapping[str, tuple[str, ...]]
    requires: tuple[str, tuple[str, ...]] | None = None  # (variable, values it may have when present)

    def names(self) -> tuple[str, ...]:
        return tuple(n for spellings in self.parts.values() for n in spellings)

    def applies(self, env: Mapping[str, str | None]) -> bool:
        if not any(n in env for n in self.names()):
            return False
        if self.requires is None or env.get(self.requires[0]) is None:
            return True
        return (env.get(self.requires[0]) or "").lower() in self.requires[1]

    def values(self, env: Mapping[str, str | None]) -> dict[str, str]:
        """Each part's value in env (the last spelling present wins, as for a URL's last definition)."""
        out: dict[str, str] = {}
        for part, spellings in self.parts.items():
            for n in spellings:
                if env.get(n) is not None:
                    out[part] = env[n] or ""
        return out

    def url(self, env: Mapping[str, str | None]) -> str:
        """The settings as a libpq URL (for pg_dump); a part not set is libpq's default."""
        v = self.values(env)
        auth = quote(v.get("user", ""), safe="") + (":" + quote(v["password"], safe="") if v.get("password") else "")
        host = v.get("host", "")
        where = (f"[{host}]" if ":" in host else quote(host, safe="")) + (f":{v['port']}" if v.get("port") else "")
        return f"postgresql://{auth + '@' if auth else ''}{where}/{quote(v.get('dbname', ''), safe='')}"

    def target(self, env: Mapping[str, str | None]) -> tuple[str, str, str]:
        v = self.values(env)
        return target(v.get("host", ""), v.get("port", ""), v.get("dbname", ""))


def _family(name: str, prefix: str, **suffixes: tuple[str, ...]) -> Family:
    return Family(name, {part: tuple(prefix + s for s in spellings) for part, spellings in suffixes.items()})


BUILTIN_FAMILIES = (
    _family(
        LIBPQ_FAMILY,
        "PG",
        host=("HOST",),
        port=("PORT",),
        user=("USER",),
        password=("PASSWORD",),
        dbname=("DATABASE",),
    ),
    _family(
        "POSTGRES_*",
        "POSTGRES_",
        host=("HOST", "SERVER"),
        port=("PORT",),
        user=("USER",),
        password=("PASSWORD",),
        dbname=("DB", "DATABASE"),
    ),
    Family(
        "Laravel (DB_*)",
        {
            "host": ("DB_HOST",),
            "port": ("DB_PORT",),
            "user": ("DB_USERNAME", "DB_USER"),
            "password": ("DB_PASSWORD", "DB_PASS"),
            "dbname": ("DB_DATABASE", "DB_NAME"),
        },
        requires=("DB_CONNECTION", ("pgsql", "postgres", "postgresql")),
    ),
    _family(
        "DATABASE_*",
        "DATABASE_",
        host=("HOST",),
        port=("PORT",),
        user=("USER", "USERNAME"),
        password=("PASSWORD",),
        dbname=("NAME",),
    ),
)


def prefix_family(prefix: str) -> Family:
    """treefork.toml's `database_parts = ["MYAPP_DB_"]`: the usual suffixes after a prefix of the app's."""
    return _family(
        f"{prefix}*",
        prefix,
        host=("HOST", "SERVER"),
        port=("PORT",),
        user=("USER", "USERNAME"),
        password=("PASSWORD", "PASS"),
        dbname=("NAME", "DB", "DATABASE"),
    )


def database_vars(declared: tuple[Family, ...]) -> frozenset[str]:
    """Every variable treefork writes with a workspace's database: the URL variables and every family's."""
    return frozenset(
        (*POOLED_URL_VARS, *DIRECT_URL_VARS, *(n for f in (*declared, *BUILTIN_FAMILIES) for n in f.names()))
    )


def families(declared: tuple[Family, ...], env: Mapping[str, str | None]) -> list[Family]:
    """The families whose variables env has: treefork.toml's first, then the built-in ones."""
    return [f for f in (*declared, *BUILTIN_FAMILIES) if f.applies(env)]


def family_updates(family: Family, env: Mapping[str, str | None], new_url: str | None) -> dict[str, str | None]:
    """Every part of family pointing at new_url's database (a part the file lacks is added, so `psql` with
    only PGHOST set does not go to port 5432 with the workspace's password). new_url None: unprovisioned."""
    new = parse(new_url) if new_url else None
    old = family.values(env)
    if new is None:
        fails = {"host": "unprovisioned.treefork.invalid", "port": "5432", "dbname": "unprovisioned"}
        wanted: dict[str, str | None] = {p: fails.get(p) for p in PARTS}
    else:
        wanted = {
            "host": spelled_host(old.get("host", ""), new.host),
            "port": new.port,
            "user": new.user,
            "password": new.password,
            "dbname": new.dbname,
        }
    out: dict[str, str | None] = {}
    for part, spellings in family.parts.items():
        present = [n for n in spellings if n in env]
        for n in present or (spellings[:1] if wanted[part] is not None else ()):
            out[n] = wanted[part]
    return out
