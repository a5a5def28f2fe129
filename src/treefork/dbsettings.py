"""An app's database settings in its env file, in the app's own spelling.

A setting is a URL (`postgres://`, `postgresql://`, a SQLAlchemy dialect such as `postgresql+asyncpg://`, or
`jdbc:postgresql://`) or a family of split variables (libpq's `PGHOST`/`PGPORT`/..., `POSTGRES_SERVER`/...,
Laravel's `DB_*`, `DATABASE_HOST`/..., or one named in treefork.toml's `database_parts`: dbfamilies.py). Pointing either at
another database changes its host, port, user, password and database name, nothing else: the scheme, the
user's loopback spelling (`localhost` stays `localhost`) and every query parameter stay, in order. The one
deliberate exception is TLS: a database on loopback (treefork's local backend) has no TLS, so the parameters
that demand it are relaxed (`_relax_tls`), and each write says so once on stderr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

_URL = re.compile(
    r"^(?P<scheme>(?:jdbc:)?postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?)://(?P<netloc>[^/?#]*)"
    r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?$",
    re.IGNORECASE | re.DOTALL,
)
_LIBPQ_DIALECTS = ("", "+psycopg", "+psycopg2", "+psycopg2cffi")  # these hand the query string to libpq
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", ""})  # "" is libpq's Unix socket: this machine too
_CONN_PARAMS = ("host", "hostaddr", "port", "dbname", "user", "password")


@dataclass(frozen=True)
class PgUrl:
    scheme: str
    userinfo: str | None  # as written (percent-encoded)
    hosts: str  # as written: `localhost`, `[::1]:5433`, `h1:5432,h2:5432`
    path: str
    params: tuple[str, ...]  # the query's `key=value` pieces as written
    fragment: str

    @property
    def dialect(self) -> str:
        return self.scheme[self.scheme.find("+") :].lower() if "+" in self.scheme else ""

    def param(self, key: str) -> str | None:
        found = [unquote(v) for k, v in map(_split_param, self.params) if k == key and v is not None]
        return found[-1] if found else None

    @property
    def host(self) -> str:
        return self.param("host") or _host_port(self.hosts.split(",")[0])[0]

    @property
    def port(self) -> str:
        return self.param("port") or _host_port(self.hosts.split(",")[0])[1] or "5432"

    @property
    def user(self) -> str:
        return self.param("user") or unquote((self.userinfo or "").partition(":")[0])

    @property
    def password(self) -> str:
        found = self.param("password")
        return found if found is not None else unquote((self.userinfo or "").partition(":")[2])

    @property
    def dbname(self) -> str:
        return self.param("dbname") or unquote(self.path.lstrip("/"))


def parse(value: str | None) -> PgUrl | None:
    """A PostgreSQL URL in any of the spellings apps use, or None for anything else."""
    m = _URL.match(value or "")
    if not m:
        return None
    userinfo, at, hosts = m.group("netloc").rpartition("@")
    query = m.group("query")
    return PgUrl(
        scheme=m.group("scheme"),
        userinfo=userinfo if at else None,
        hosts=hosts,
        path=m.group("path") or "",
        params=tuple(query.split("&")) if query else (),
        fragment=m.group("fragment") or "",
    )


# libpq's connection keywords: the only query parameters pg_dump accepts (Prisma's `schema`, a driver's `ssl`
# would make it fail with "invalid URI query parameter").
_LIBPQ_KEYWORDS = frozenset(
    "host hostaddr port dbname user password passfile channel_binding connect_timeout client_encoding options "
    "application_name fallback_application_name keepalives keepalives_idle keepalives_interval keepalives_count "
    "tcp_user_timeout replication gssencmode sslmode sslnegotiation requiressl sslcompression sslcert sslkey "
    "sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni requirepeer ssl_min_protocol_version "
    "ssl_max_protocol_version krbsrvname gsslib gssdelegation service target_session_attrs load_balance_hosts "
    "require_auth min_protocol_version max_protocol_version".split()
)


def libpq_url(value: str) -> str:
    """The URL as libpq (pg_dump) reads it: `postgresql://`, only libpq's own parameters."""
    u = parse(value)
    if u is None:
        return value
    params = [p for p in u.params if _split_param(p)[0] in _LIBPQ_KEYWORDS]
    auth = u.userinfo + "@" if u.userinfo is not None else ""
    return f"postgresql://{auth}{u.hosts}{u.path}" + ("?" + "&".join(params) if params else "")


def _split_param(piece: str) -> tuple[str, str | None]:
    key, eq, value = piece.partition("=")
    return unquote(key), (value if eq else None)


def _host_port(text: str) -> tuple[str, str]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return unquote(host), rest.removeprefix(":")
    host, _, port = text.partition(":")
    return unquote(host), port


def is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_NAMES or host.startswith("/") or host.startswith("127.")


def target(host: str, port: str, dbname: str) -> tuple[str, str, str]:
    """Which database a setting names: loopback spellings are one machine."""
    return ("localhost" if is_loopback(host) else host.lower(), port or "5432", dbname)


def url_target(value: str | None) -> tuple[str, str, str] | None:
    u = parse(value)
    return target(u.host, u.port, u.dbname) if u else None


def spelled_host(old: str, new: str) -> str:
    """The new host, in the user's spelling when both are this machine's IPv4 loopback."""
    return old if old.lower() == "localhost" and new in ("127.0.0.1", "localhost") else new


@dataclass
class Notes:
    """What a rewrite changed beyond the database's address (TLS parameters), said once per env file."""

    changes: dict[str, list[str]] = field(default_factory=dict)  # "sslmode=require -> sslmode=disable": [vars]

    def add(self, change: str, var: str) -> None:
        self.changes.setdefault(change, [])
        if var not in self.changes[change]:
            self.changes[change].append(var)

    def line(self, where: str) -> str | None:
        if not self.changes:
            return None
        said = "; ".join(f"{c} in {', '.join(v)}" for c, v in self.changes.items())
        return f"{where}: {said} (see docs/configuration.md, 'TLS parameters')"


def retarget(old_value: str | None, new_url: str, *, var: str, notes: Notes) -> str:
    """old_value pointed at new_url's database, keeping old_value's spelling; new_url itself when old_value is
    not a PostgreSQL URL."""
    old, new = parse(old_value), parse(new_url)
    if old is None or new is None:
        return new_url
    host, port = spelled_host(old.host, new.host), _host_port(new.hosts.split(",")[0])[1]
    creds_in_query = old.param("user") is not None or old.param("password") is not None
    in_query = creds_in_query or (old.userinfo is None and old.scheme.lower().startswith("jdbc:"))
    userinfo = None if in_query else new.userinfo
    hosts = (f"[{host}]" if ":" in host else quote(host, safe="")) + (f":{port}" if port else "")
    params = _params(old, new, host=host, creds_in_query=in_query, var=var, notes=notes)
    out = f"{old.scheme}://{userinfo + '@' if userinfo else ''}{hosts}/{quote(new.dbname, safe='')}"
    return out + ("?" + "&".join(params) if params else "") + old.fragment


def _params(old: PgUrl, new: PgUrl, *, host: str, creds_in_query: bool, var: str, notes: Notes) -> list[str]:
    values = {"host": host, "hostaddr": new.host, "port": new.port, "dbname": new.dbname}
    if creds_in_query:
        values.update(user=new.user, password=new.password)
    out: list[str] = []
    for piece in old.params:
        key, value = _split_param(piece)
        if key in values and value is not None:
            out.append(f"{piece.partition('=')[0]}={quote(values[key], safe='')}")
        elif key in ("user", "password") and not creds_in_query:
            continue  # userinfo carries the new ones
        elif is_loopback(new.host) and value is not None:
            out.extend(_relax_tls(piece, key, unquote(value), var=var, notes=notes))
        else:
            out.append(piece)
    have = {_split_param(p)[0] for p in out}
    if creds_in_query:
        out += [f"{k}={quote(values[k], safe='')}" for k in ("user", "password") if k not in have and values[k]]
    return _with_backend_params(out, old, new, var=var, notes=notes)


# On a loopback database (no TLS), what each TLS-demanding parameter becomes; None = left out.
_LOOPBACK_TLS: dict[str, dict[str, str | None]] = {
    "sslmode": {"require": "disable", "verify-ca": "disable", "verify-full": "disable"},
    "ssl": {"true": "false", "1": "false", "require": "disable", "verify-ca": "disable", "verify-full": "disable"},
    "channel_binding": {"require": "disable"},
    "sslrootcert": {"system": None},  # libpq refuses sslrootcert=system with any sslmode but verify-full
}


def _relax_tls(piece: str, key: str, value: str, *, var: str, notes: Notes) -> list[str]:
    rule = _LOOPBACK_TLS.get(key, {})
    if value.lower() not in rule:
        return [piece]
    relaxed = rule[value.lower()]
    notes.add(f"{key}={value} {'-> ' + key + '=' + relaxed if relaxed else 'left out'}", var)
    return [f"{piece.partition('=')[0]}={relaxed}"] if relaxed else []


def _with_backend_params(kept: list[str], old: PgUrl, new: PgUrl, *, var: str, notes: Notes) -> list[str]:
    """The parameters the backend's own URL carries (Neon's sslmode=require), for the clients that pass them to
    libpq: added when missing, and an sslmode that would not use TLS raised to the backend's."""
    if old.dialect not in _LIBPQ_DIALECTS or old.scheme.lower().startswith("jdbc:"):
        return kept
    out = list(kept)
    where = {_split_param(p)[0]: i for i, p in enumerate(out)}
    for piece in new.params:
        key = _split_param(piece)[0]
        if key not in where:
            out.append(piece)
        elif key == "sslmode" and (_split_param(out[where[key]])[1] or "").lower() in ("disable", "allow", "prefer"):
            notes.add(f"{out[where[key]]} -> {piece} (the database requires TLS)", var)
            out[where[key]] = piece
    return out


SCRAM_ONLY = "require_auth=scram-sha-256"


def requiring_scram(url: str) -> str:
    """url with `require_auth=scram-sha-256` (treefork.toml's `require_auth`), when it names a database on this
    machine and says nothing of require_auth yet: libpq (>= 16) then hangs up on a server that asks for the
    password itself, a program squatting a stopped cluster's port. retarget carries it into the app's own
    spelling for the clients that hand the query string to libpq only (`_with_backend_params`)."""
    u = parse(url)
    if u is None or not is_loopback(u.host) or u.param("require_auth") is not None:
        return url
    return _with_param(url, SCRAM_ONLY)


def _with_param(url: str, piece: str) -> str:
    head, hash_, fragment = url.partition("#")
    return head + ("&" if "?" in head else "?") + piece + hash_ + fragment


# Variables that name a database, by convention (Prisma, Vercel Postgres, Neon's integrations). A worktree must
# never keep one pointing at the parent's database.
POOLED_URL_VARS = ("DATABASE_URL", "POSTGRES_URL", "POSTGRES_PRISMA_URL", "DATABASE_URL_POOLED")
DIRECT_URL_VARS = ("DIRECT_URL", "DATABASE_URL_UNPOOLED", "POSTGRES_URL_NON_POOLING", "POSTGRES_URL_NO_SSL")
