"""treefork.toml at the main worktree's root. Every key has a default, so the file is optional.

Each value remembers where it came from (`default` or `treefork.toml`), for `doctor` and error messages.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treefork.dbfamilies import Family, prefix_family
from treefork.errors import FatalError

CONFIG_FILE = "treefork.toml"

DEFAULTS: dict[str, Any] = {
    "env_file": ".env",
    "env_example": ".env.example",
    "url_var": "DATABASE_URL",
    "direct_url_var": "",
    "secret_keys": ["NEON_API_KEY"],
    "copy_files": [],
    "setup": [],
    "worktree_dir": "../{repo}.worktrees",
    "migrate": "",
    "ports": [],
    "agents": {},
    "database_parts": [],
    "migration_dirs": [],
    "postgres": "",
    "extensions": [],
    "require_auth": False,
}
NEON_DEFAULTS: dict[str, Any] = {
    "project_id": "",
    "branch_name_template": "{branch}",
    "pooled": True,
    "database": "",
    "role": "",
    "ttl": "",
}
DOCS: dict[str, str] = {
    "env_file": "the env file written into each worktree",
    "env_example": "the template used when the main worktree has no env file",
    "url_var": "the variable that gets the workspace's database URL",
    "direct_url_var": "a second variable for the unpooled URL (Neon), e.g. DIRECT_URL; empty = none",
    "secret_keys": "keys never copied into a worktree's env file (agents can read those files)",
    "copy_files": "extra files copied from the main worktree into each new worktree",
    "setup": "commands run in a new worktree with its env loaded, e.g. 'npm ci'",
    "worktree_dir": "where new worktrees go, relative to the main worktree; {repo} is its directory name",
    "migrate": "the command `treefork merge` runs in the parent's worktree after merging, e.g. 'alembic upgrade head'",
    "ports": "env variables that each workspace gets a port of its own for, e.g. ['PORT', 'VITE_PORT']",
    "database_parts": "more families of split database settings: a prefix ('MYAPP_DB_') or a table of "
    "host/port/user/password/database = variable name(s)",
    "migration_dirs": "folders of numbered migration files that collision checks read besides the ones they find "
    "themselves (Django, Alembic, Flyway, Rails, Prisma, `migrations/`), e.g. ['db/sql']",
    "postgres": "the PostgreSQL the local backend's clusters run on, chosen at `init`: 'embedded' (the wheel's 18), "
    "a major ('15') or a bin directory; empty = the one matching the imported dev database, else embedded",
    "extensions": "extensions treefork creates as admin in the root (so every workspace has them) and its template1, "
    "for those the workspace's role may not create itself (untrusted: postgis), e.g. ['postgis']; one added after "
    "`init` is made everywhere by `treefork sync`",
    "require_auth": "add require_auth=scram-sha-256 (PGREQUIREAUTH) to the local database's settings written for "
    "libpq clients, so they never send the password to a program squatting a stopped cluster's port",
    "agents": "agent profiles for `new --agent NAME`: a table of name = command line, e.g. claude = 'claude'",
    "neon.project_id": "the Neon project (also settable by `init --project-id`)",
    "neon.branch_name_template": "Neon branch name; {branch} is the git branch, {workspace} the workspace",
    "neon.pooled": "write the pooled (pgbouncer) URL into url_var",
    "neon.database": "database name on each branch (default: the only one)",
    "neon.role": "role name on each branch (default: the database's owner)",
    "neon.ttl": "default --ttl for new branches, e.g. 7d (at most 30d)",
}


@dataclass(frozen=True)
class Config:
    env_file: str
    env_example: str
    url_var: str
    direct_url_var: str
    secret_keys: tuple[str, ...]
    copy_files: tuple[str, ...]
    setup: tuple[tuple[str, ...], ...]
    worktree_dir: str
    migrate: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    agents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    neon: dict[str, Any] = field(default_factory=dict)
    database_parts: tuple[Family, ...] = ()
    migration_dirs: tuple[str, ...] = ()
    postgres: str = ""
    extensions: tuple[str, ...] = ()
    require_auth: bool = False
    sources: dict[str, str] = field(default_factory=dict)

    def env_path(self, worktree: Path | str) -> Path:
        """The env file of a worktree (the main one's or a workspace's): the one home of that path."""
        return Path(worktree) / self.env_file

    def worktree_path(self, main_root: Path, dir_name: str) -> Path:
        base = Path(self.worktree_dir.replace("{repo}", main_root.name))
        if not base.is_absolute():
            base = main_root / base
        return Path(_normpath(base)) / dir_name


def _normpath(p: Path) -> str:
    import os

    return os.path.normpath(str(p))


def load(main_root: Path) -> Config:
    path = main_root / CONFIG_FILE
    raw: dict[str, Any] = {}
    if path.exists():
        import tomllib  # only repos with a treefork.toml pay for the parser

        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise FatalError(
                f"{path} is not valid TOML: {e}", hint="fix the file or remove it to use the defaults"
            ) from None
    unknown = set(raw) - set(DEFAULTS) - {"neon"}
    if unknown:
        raise FatalError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}", hint=f"known keys: {', '.join(DEFAULTS)}, [neon]"
        )
    values = {k: raw.get(k, v) for k, v in DEFAULTS.items()}
    sources = {k: ("treefork.toml" if k in raw else "default") for k in DEFAULTS}
    neon_raw = raw.get("neon", {})
    if not isinstance(neon_raw, dict) or set(neon_raw) - set(NEON_DEFAULTS):
        raise FatalError(f"{path}: bad [neon] table", hint=f"known keys: {', '.join(NEON_DEFAULTS)}")
    _check_types(path, values)
    families = tuple(_database_family(path, spec) for spec in values["database_parts"])
    _check_variables(path, values, families)
    return Config(
        env_file=values["env_file"],
        env_example=values["env_example"],
        url_var=values["url_var"],
        direct_url_var=values["direct_url_var"],
        secret_keys=tuple(values["secret_keys"]),
        copy_files=tuple(values["copy_files"]),
        setup=tuple(_command(c) for c in values["setup"]),
        worktree_dir=values["worktree_dir"],
        migrate=_command(values["migrate"]) if values["migrate"] else (),
        ports=_port_vars(path, values["ports"]),
        agents={str(k): _command(v) for k, v in values["agents"].items()},
        neon={**NEON_DEFAULTS, **neon_raw},
        database_parts=families,
        migration_dirs=_folders(path, values["migration_dirs"]),
        postgres=values["postgres"],
        extensions=_extension_names(path, values["extensions"]),
        require_auth=values["require_auth"],
        sources=sources,
    )


def _check_types(path: Path, values: dict[str, Any]) -> None:
    for key, default in DEFAULTS.items():
        if key == "migrate" and isinstance(values[key], list):
            continue  # a command may be a list too
        if not isinstance(values[key], type(default)):
            shown = str(default).lower() if isinstance(default, bool) else repr(default)  # TOML's spelling
            kind = "boolean (true or false)" if isinstance(default, bool) else type(default).__name__
            raise FatalError(f"{path}: {key} must be a {kind}", hint=f"{key} = {shown}")
    for key in ("env_file", "env_example"):
        name = values[key]
        if "/" in name or name in ("", ".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise FatalError(f"{path}: {key} must be a plain file name", hint=f"{key} = {DEFAULTS[key]!r}")
        if name.lower() == ".git":
            raise FatalError(
                f"{path}: {key} = {name!r} is git's own (a worktree's link to its repository)",
                hint=f"{key} = {DEFAULTS[key]!r}",
            )
    for key in ("worktree_dir", "migrate"):
        if isinstance(values[key], str) and "\0" in values[key]:
            raise FatalError(f"{path}: {key} contains a NUL byte", hint=f"{key} = {DEFAULTS[key]!r}")


# Variables a process's own start-up reads (the loader, the shell, interpreters, git, treefork): treefork
# would put a database URL, password included, where they look.
_PROCESS_VARS = frozenset(
    {"PATH", "HOME", "SHELL", "USER", "LOGNAME", "PWD", "IFS", "ENV", "BASH_ENV", "CDPATH", "PS4", "TMPDIR",
     "TERM", "LANG", "TZ", "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB", "RUBYOPT", "RUBYLIB",
     "JAVA_TOOL_OPTIONS", "GCONV_PATH", "HOSTALIASES", "MALLOC_CHECK_", "SSL_CERT_FILE", "SSL_CERT_DIR"}
)  # fmt: skip
_PROCESS_PREFIXES = ("LD_", "DYLD_", "PYTHON", "GIT_", "LC_", "TREEFORK_", "SSH_", "GLIBC_")


def _check_variables(path: Path, values: dict[str, Any], families: tuple[Family, ...]) -> None:
    """The variables treefork writes: names of a process's own settings are refused, and so is a port in a
    database variable (its URL or one of its split settings)."""
    written = [("url_var", values["url_var"]), ("direct_url_var", values["direct_url_var"])]
    written += [("ports", n) for n in values["ports"] if isinstance(n, str)]
    for key, name in written:
        example = "ports = ['PORT']" if key == "ports" else f"{key} = {DEFAULTS[key]!r}"
        if key == "direct_url_var" and not name:
            continue
        if not _is_var_name(name):
            raise FatalError(f"{path}: {key} {name!r} is not an env variable name", hint=example)
        if name.upper() in _PROCESS_VARS or name.upper().startswith(_PROCESS_PREFIXES):
            raise FatalError(
                f"{path}: {key} {name!r} is a variable programs read for themselves; treefork will not write a "
                "database URL or a port into it",
                hint=example,
            )
    from treefork.dbfamilies import database_vars

    taken = database_vars(families) | {values["url_var"], values["direct_url_var"]} - {""}
    clash = [n for n in values["ports"] if isinstance(n, str) and n in taken]
    if clash:
        raise FatalError(
            f"{path}: ports lists {', '.join(clash)}, a database variable treefork writes with the workspace's database",
            hint="list the app's own port variables, e.g. ports = ['PORT', 'VITE_PORT']",
        )


def _port_vars(path: Path, names: list[Any]) -> tuple[str, ...]:
    import re

    bad = [n for n in names if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]
    if bad or len(set(names)) != len(names):
        raise FatalError(f"{path}: ports must be distinct env variable names", hint="ports = ['PORT', 'VITE_PORT']")
    return tuple(names)


def _folders(path: Path, names: list[Any]) -> tuple[str, ...]:
    """Folders relative to the repository's root, as git names them: 'db/sql'."""
    bad = [n for n in names if not isinstance(n, str) or not n.strip("/") or n.startswith("/") or ".." in n.split("/")]
    if bad:
        raise FatalError(
            f"{path}: migration_dirs must be folders inside the repository ({bad[0]!r} is not)",
            hint="migration_dirs = ['db/sql']",
        )
    return tuple(n.strip("/") for n in names)


def _extension_names(path: Path, names: list[Any]) -> tuple[str, ...]:
    import re

    bad = [n for n in names if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", n)]
    if bad:
        raise FatalError(
            f"{path}: extensions must be extension names ({bad[0]!r} is not)", hint="extensions = ['postgis']"
        )
    return tuple(names)


_PART_KEYS = {"host": "host", "port": "port", "user": "user", "password": "password", "database": "dbname"}
_PARTS_HINT = "database_parts = ['MYAPP_DB_'] or [{ host = 'APP_DB_SERVER', database = 'APP_DB_NAME', ... }]"


def _database_family(path: Path, spec: Any) -> Family:
    """A prefix (its HOST/SERVER, PORT, USER/USERNAME, PASSWORD/PASS, DB/DATABASE/NAME variables), or a table of
    part = variable name (or list of names)."""
    if isinstance(spec, str) and _is_var_name(spec):
        return prefix_family(spec)
    if isinstance(spec, dict) and spec and set(spec) <= set(_PART_KEYS):
        parts = {_PART_KEYS[k]: (v,) if isinstance(v, str) else tuple(v) for k, v in spec.items()}
        if all(names and all(isinstance(n, str) and _is_var_name(n) for n in names) for names in parts.values()):
            return Family(f"treefork.toml {'/'.join(n[0] for n in parts.values())}", parts)
    raise FatalError(f"{path}: bad database_parts entry {spec!r}", hint=_PARTS_HINT)


def _is_var_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None


def _command(spec: Any) -> tuple[str, ...]:
    """A setup command: a string is split like a shell would (no shell runs it), a list is taken as is."""
    if isinstance(spec, str):
        return tuple(shlex.split(spec))
    if isinstance(spec, list) and all(isinstance(a, str) for a in spec):
        return tuple(spec)
    raise FatalError(f"bad command {spec!r}", hint="write it as a string 'npm ci' or a list ['npm', 'ci']")
