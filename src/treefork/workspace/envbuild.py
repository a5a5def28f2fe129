"""Building a worktree's env file from the main worktree's, and keeping it out of git."""

from __future__ import annotations

import shutil
from pathlib import Path

from treefork import dbfamilies, dbsettings, envfile
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


# Variables that name a database (dbsettings); split settings (PGHOST, POSTGRES_DB, ...) are dbfamilies'.
POOLED_URL_VARS = dbsettings.POOLED_URL_VARS
DIRECT_URL_VARS = dbsettings.DIRECT_URL_VARS
_DIRECT_HOST_VARS = ("PGHOST_UNPOOLED",)  # Neon's integrations: the unpooled host beside PGHOST
_PG_REQUIRE_AUTH = "PGREQUIREAUTH"  # treefork.toml's require_auth, for the PG* family (libpq reads it)


def url_updates(
    config: Config, conn: Connection | None, base: str = "", notes: dbsettings.Notes | None = None
) -> dict[str, str | None]:
    """A worktree's keys with their values, and the secret keys removed (see database_updates)."""
    updates = database_updates(config, conn, base, notes or dbsettings.Notes())
    updates.update({k: None for k in config.secret_keys})
    return updates


def database_updates(
    config: Config, conn: Connection | None, base: str, notes: dbsettings.Notes
) -> dict[str, str | None]:
    """Every database variable in `base` pointing at conn's database, each in its own spelling; conn None = not
    provisioned: every one gets a value that fails loudly, never the parent's. Besides the configured keys and
    the known URL variables, any other PostgreSQL URL naming the same server and database as one of them or as
    a family of split settings (the parent's) is rewritten, and so is every family of split settings."""
    url = conn.url if conn else envfile.UNPROVISIONED_URL
    direct = (conn.direct_url or conn.url) if conn else envfile.UNPROVISIONED_URL
    if conn and config.require_auth:
        url, direct = dbsettings.requiring_scram(url), dbsettings.requiring_scram(direct)
    present = envfile.values(base)
    families = dbfamilies.families(config.database_parts, present)
    parents = {f.target(present) for f in families}
    known = (*POOLED_URL_VARS, *DIRECT_URL_VARS, config.url_var, config.direct_url_var)
    parents |= {t for k, v in present.items() if k in known and (t := dbsettings.url_target(v))}
    in_family = {n for f in families for n in f.names()}
    updates: dict[str, str | None] = {}

    def point(key: str, new_url: str) -> None:
        old = present.get(key)
        updates[key] = dbsettings.retarget(old, new_url, var=key, notes=notes) if conn else new_url

    for key, value in present.items():
        if key in in_family:
            continue
        found = dbsettings.url_target(value)
        if key in DIRECT_URL_VARS or ("UNPOOLED" in key or "NON_POOLING" in key) and found in parents:
            point(key, direct)
        elif key in POOLED_URL_VARS or (found is not None and found in parents):
            point(key, url)
        elif key in _DIRECT_HOST_VARS:
            updates[key] = _host(direct) if conn else envfile.UNPROVISIONED_HOST
    for family in families:
        updates.update(dbfamilies.family_updates(family, present, url if conn else None))
        if family.name == dbfamilies.LIBPQ_FAMILY and conn and dbsettings.SCRAM_ONLY in url:
            updates.setdefault(_PG_REQUIRE_AUTH, present.get(_PG_REQUIRE_AUTH) or "scram-sha-256")
    point(config.url_var, url)
    if config.direct_url_var:
        point(config.direct_url_var, direct)
    return updates


def _host(url: str) -> str:
    parsed = dbsettings.parse(url)
    return parsed.host if parsed else ""


def write_worktree_env(
    repo: Repo,
    config: Config,
    worktree: Path,
    conn: Connection | None,
    *,
    excluded: bool = False,
    workspace: str | None = None,
) -> Path:
    """Write <worktree>/<env_file>: the template with every database variable pointing at this workspace
    (or failing loudly) and secrets left out; with `workspace`, its app ports too. Atomic, 0600. Never into a file git tracks or would commit,
    never through a symlink. Keeps it out of git first, unless the caller says it already did (`excluded`)."""
    target = config.env_path(worktree)
    if not excluded:
        exclude_from_git(repo, worktree, config.env_file)
    base = envfile.read(target) if envfile.exists(target) else template_text(repo, config)
    # over a placeholder (written first by the git hook, or by a failed provisioning), the app's own spelling
    # of each database variable is the main worktree's, not the placeholder's
    placeholder = conn is not None and envfile.UNPROVISIONED_HOST in base
    notes = dbsettings.Notes()
    updates = url_updates(config, conn, template_text(repo, config) if placeholder else base, notes)
    linked = worktree.resolve() != repo.main_root.resolve()
    if conn is not None:
        updates.update(conn.extra_env)  # e.g. Neon's NEON_BRANCH
        if config.ports and linked and workspace is not None:
            from treefork.workspace import ports

            given = ports.allocate(repo.common_dir, workspace, worktree, config.ports)
            updates.update({k: str(v) for k, v in given.items()})
        if conn.context and linked:
            write_neon_context(repo, worktree, conn.context)
    if envfile.write(target, envfile.rewrite(base, updates)):
        say_notes(notes, target)
    return target


def say_notes(notes: dbsettings.Notes, path: Path) -> None:
    """Once per env file written: the TLS parameters changed to suit the database it points at."""
    line = notes.line(f"{path}: TLS parameters changed to suit its database")
    if line:
        from treefork import output

        output.warn(line)


def write_neon_context(repo: Repo, worktree: Path, context: dict[str, str]) -> None:
    """<worktree>/.neon, so the Neon CLI run inside the worktree targets its branch, not the main repo's."""
    import json

    from treefork.fsutil import atomic_write_text

    atomic_write_text(worktree / ".neon", json.dumps(context, indent=2) + "\n", mode=0o644)
    if not repo.is_ignored(worktree / ".neon", worktree):
        repo.add_exclude("/.neon", why="the Neon CLI's per-worktree context")


def copy_extra_files(repo: Repo, config: Config, worktree: Path) -> None:
    for rel in config.copy_files:
        if (repo.main_root / rel).resolve() == config.env_path(repo.main_root).resolve():
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
            hint=f"untrack it (cd {worktree} && git rm --cached {name} && git commit -m 'untrack {name}') and commit "
            f"a {name}.example instead, or give treefork an untracked file of its own (env_file = '.env.local' in "
            "treefork.toml), then retry",
        )
    if repo.is_ignored(target, worktree):
        return
    repo.add_exclude(f"/{name}", why="env files hold database passwords")
    if not repo.is_ignored(target, worktree):
        raise FatalError(
            f"git does not ignore {target} even after adding it to info/exclude (a `!{name}` rule in a .gitignore "
            "overrides it); treefork will not write a database password where `git add -A` would commit it",
            hint=f"remove the `!{name}` line (see `git -C {worktree} check-ignore -v --no-index {name}`), or give "
            "treefork an ignored file of its own (env_file = '.env.local' in treefork.toml), then retry",
        )


def load_env(path: Path) -> dict[str, str]:
    return {k: v for k, v in envfile.values(envfile.read(path)).items() if v is not None}
