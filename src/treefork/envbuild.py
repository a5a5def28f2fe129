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


def url_updates(config: Config, conn: Connection | None) -> dict[str, str | None]:
    """Our keys with their values, and the secret keys removed. conn None = not provisioned:
    the URL is set to a value that fails loudly, never the parent's."""
    updates: dict[str, str | None] = {k: None for k in config.secret_keys}
    url = conn.url if conn else envfile.UNPROVISIONED_URL
    updates[config.url_var] = url
    if config.direct_url_var:
        updates[config.direct_url_var] = (conn.direct_url or conn.url) if conn else envfile.UNPROVISIONED_URL
    return updates


def write_worktree_env(
    repo: Repo, config: Config, worktree: Path, conn: Connection | None, *, excluded: bool = False
) -> Path:
    """Write <worktree>/<env_file>: the template with our keys set and secrets left out. Atomic, 0600.
    Also keeps it out of git, unless the caller says it already did (`excluded`)."""
    target = worktree / config.env_file
    base = envfile.read(target) if target.exists() else template_text(repo, config)
    updates = url_updates(config, conn)
    linked = worktree.resolve() != repo.main_root.resolve()
    if conn is not None:
        updates.update(getattr(conn, "extra_env", None) or {})  # e.g. Neon's NEON_BRANCH
        if config.ports and linked:
            from treefork import ports

            updates.update({k: str(v) for k, v in ports.allocate(repo.common_dir, worktree, config.ports).items()})
        if getattr(conn, "context", None) and linked:
            write_neon_context(repo, worktree, conn.context)  # type: ignore[attr-defined]
    envfile.write(target, envfile.rewrite(base, updates))
    if not excluded:
        exclude_from_git(repo, worktree, config.env_file)
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
        src = (repo.main_root / rel).resolve()
        if repo.main_root.resolve() not in src.parents:
            raise FatalError(
                f"copy_files entry {rel!r} points outside the repository", hint="use paths relative to the repo root"
            )
        if not src.exists():
            continue
        dst = worktree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True)
        else:
            shutil.copy2(src, dst)


def exclude_from_git(repo: Repo, worktree: Path, name: str) -> None:
    """Add `/<name>` to the shared info/exclude unless git already ignores the file."""
    if not repo.is_ignored(worktree / name, worktree):
        repo.add_exclude(f"/{name}", why="env files hold database passwords")


def load_env(path: Path) -> dict[str, str]:
    return {k: v for k, v in envfile.values(envfile.read(path)).items() if v is not None}
