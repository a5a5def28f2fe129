"""Building a worktree's env file from the main worktree's, and keeping it out of git."""

from __future__ import annotations

import shutil
from pathlib import Path

from treefork import envfile
from treefork.backends.base import Connection
from treefork.config import Config
from treefork.errors import FatalError
from treefork.git import Repo


def template_text(repo: Repo, config: Config) -> str:
    """The main worktree's env file, else its example file, else nothing."""
    main = repo.main_root
    for name in (config.env_file, config.env_example):
        path = main / name
        if path.is_file():
            return envfile.read(path)
    return ""


# Variables that name a database, by convention (Prisma, Vercel Postgres, Neon's integrations, libpq,
# the postgres Docker image). A worktree must never keep one pointing at the parent's database.
POOLED_URL_VARS = ("DATABASE_URL", "POSTGRES_URL", "POSTGRES_PRISMA_URL", "DATABASE_URL_POOLED")
DIRECT_URL_VARS = ("DIRECT_URL", "DATABASE_URL_UNPOOLED", "POSTGRES_URL_NON_POOLING", "POSTGRES_URL_NO_SSL")
PART_VARS = {
    "PGHOST": "host",
    "PGHOST_UNPOOLED": "direct_host",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "POSTGRES_HOST": "host",
    "POSTGRES_PORT": "port",
    "POSTGRES_DB": "dbname",
    "POSTGRES_DATABASE": "dbname",
    "POSTGRES_USER": "user",
    "POSTGRES_PASSWORD": "password",
}
_UNPROVISIONED_PARTS = {"host": "unprovisioned.treefork.invalid", "port": "5432", "dbname": "unprovisioned"}


def url_updates(config: Config, conn: Connection | None, base: str = "") -> dict[str, str | None]:
    """Our keys with their values, and the secret keys removed. conn None = not provisioned: every database
    variable gets a value that fails loudly, never the parent's. Besides the configured keys, every known
    database variable in `base` is rewritten, and so is any other Postgres URL that names the same server
    and database as one of them (the parent's)."""
    url = conn.url if conn else envfile.UNPROVISIONED_URL
    direct = (conn.direct_url or conn.url) if conn else envfile.UNPROVISIONED_URL
    present = envfile.values(base)
    parents = {_target(v) for k, v in present.items() if k in (*POOLED_URL_VARS, *DIRECT_URL_VARS, config.url_var)}
    parents.discard(None)
    updates: dict[str, str | None] = {}
    for key, value in present.items():
        if key in DIRECT_URL_VARS or ("UNPOOLED" in key or "NON_POOLING" in key) and _target(value) in parents:
            updates[key] = direct
        elif key in POOLED_URL_VARS or _target(value) in parents:
            updates[key] = url
        elif key in PART_VARS:
            updates[key] = _part(PART_VARS[key], url, direct, provisioned=conn is not None)
    updates.update({k: None for k in config.secret_keys})
    updates[config.url_var] = url
    if config.direct_url_var:
        updates[config.direct_url_var] = direct
    return updates


def _target(value: str | None) -> tuple[str, str, str] | None:
    """(host, port, database) of a Postgres URL, or None for anything else."""
    from urllib.parse import unquote, urlsplit

    if not value or not value.startswith(("postgres://", "postgresql://")):
        return None
    try:
        u = urlsplit(value)
        return (u.hostname or "").lower(), str(u.port or 5432), unquote(u.path.lstrip("/"))
    except ValueError:
        return None


def _part(part: str, url: str, direct: str, *, provisioned: bool) -> str | None:
    from urllib.parse import unquote, urlsplit

    if not provisioned:
        return None if part in ("user", "password") else _UNPROVISIONED_PARTS["host" if part == "direct_host" else part]
    u = urlsplit(direct if part == "direct_host" else url)
    values = {
        "host": u.hostname,
        "direct_host": u.hostname,
        "port": str(u.port or 5432),
        "dbname": unquote(u.path.lstrip("/")),
        "user": unquote(u.username or ""),
        "password": unquote(u.password or ""),
    }
    return values[part] or None


def write_worktree_env(
    repo: Repo, config: Config, worktree: Path, conn: Connection | None, *, excluded: bool = False
) -> Path:
    """Write <worktree>/<env_file>: the template with every database variable pointing at this workspace
    (or failing loudly) and secrets left out. Atomic, 0600. Never into a file git tracks or would commit,
    never through a symlink. Keeps it out of git first, unless the caller says it already did (`excluded`)."""
    target = worktree / config.env_file
    if not excluded:
        exclude_from_git(repo, worktree, config.env_file)
    base = envfile.read(target) if envfile.exists(target) else template_text(repo, config)
    updates = url_updates(config, conn, base)
    linked = worktree.resolve() != repo.main_root.resolve()
    if conn is not None:
        updates.update(getattr(conn, "extra_env", None) or {})  # e.g. Neon's NEON_BRANCH
        if config.ports and linked:
            from treefork.workspace import ports

            updates.update({k: str(v) for k, v in ports.allocate(repo.common_dir, worktree, config.ports).items()})
        if getattr(conn, "context", None) and linked:
            write_neon_context(repo, worktree, conn.context)  # type: ignore[attr-defined]
    envfile.write(target, envfile.rewrite(base, updates))
    return target


def write_neon_context(repo: Repo, worktree: Path, context: dict[str, str]) -> None:
    """<worktree>/.neon, so the Neon CLI run inside the worktree targets its branch, not the main repo's."""
    import json

    from treefork.fsutil import atomic_write_text

    atomic_write_text(worktree / ".neon", json.dumps(context, indent=2) + "\n", mode=0o644)
    if not repo.is_ignored(worktree / ".neon", worktree):
        repo.add_exclude("/.neon", why="the Neon CLI's per-worktree context")


def copy_extra_files(repo: Repo, config: Config, worktree: Path) -> None:
    for rel in config.copy_files:
        if (repo.main_root / rel).resolve() == (repo.main_root / config.env_file).resolve():
            raise FatalError(
                f"copy_files lists the env file {rel!r}: a copy would point the worktree at the parent's database",
                hint=f"remove {rel!r} from copy_files; treefork builds each worktree's {config.env_file} itself",
            )
        src = (repo.main_root / rel).resolve()
        if repo.main_root.resolve() not in src.parents:
            raise FatalError(
                f"copy_files entry {rel!r} points outside the repository", hint="use paths relative to the repo root"
            )
        if not src.exists():
            continue
        if src.is_dir():
            for item in sorted(src.rglob("*")):
                if item.is_file() and not item.is_symlink():
                    _copy_into(item, worktree, Path(rel) / item.relative_to(src))
        else:
            _copy_into(src, worktree, Path(rel))


def _copy_into(src: Path, worktree: Path, rel: Path) -> None:
    """Copy one file to <worktree>/<rel>, never through a symlink: a branch may commit `config -> /etc`."""
    dst = worktree / rel
    inside, parent = worktree.resolve(), dst.parent.resolve()  # resolved before anything is created
    if dst.is_symlink() or (parent != inside and inside not in parent.parents):
        raise FatalError(
            f"copy_files: {dst} is (or lies under) a symlink that leads out of the worktree; nothing was written there",
            hint=f"remove the symlink from the branch (git rm {rel}), or drop {rel} from copy_files",
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def exclude_from_git(repo: Repo, worktree: Path, name: str) -> None:
    """Keep the env file out of git: add `/<name>` to the shared info/exclude unless git already ignores it,
    then check that git really ignores it (a `!.env` in .gitignore overrides info/exclude) and does not
    track it. Refuses rather than let a password reach a commit."""
    target = worktree / name
    envfile.expect_not_symlink(target)
    if repo.is_tracked(name, worktree):
        raise FatalError(
            f"{target} is tracked by git; treefork will not write a database password into it",
            hint=f"untrack it (cd {worktree} && git rm --cached {name} && git commit -m 'untrack {name}'), "
            f"commit a {name}.example instead, then retry",
        )
    if repo.is_ignored(target, worktree):
        return
    repo.add_exclude(f"/{name}", why="env files hold database passwords")
    if not repo.is_ignored(target, worktree):
        raise FatalError(
            f"git does not ignore {target} even after adding it to info/exclude (a `!{name}` rule in a .gitignore "
            "overrides it); treefork will not write a database password where `git add -A` would commit it",
            hint=f"remove the `!{name}` line (see `git -C {worktree} check-ignore -v --no-index {name}`), then retry",
        )


def load_env(path: Path) -> dict[str, str]:
    return {k: v for k, v in envfile.values(envfile.read(path)).items() if v is not None}
