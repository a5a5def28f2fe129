"""Shell completion of workspace names (click's shell_complete): `treefork rm <TAB>` lists this repository's
workspaces. Completion runs on every <TAB>, so it reads the registry and nothing else, and never fails."""

from __future__ import annotations

from pathlib import Path

import click

from treefork.errors import FatalError


def workspace_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """The workspaces whose names start with `incomplete`; none outside a repository treefork knows."""
    del ctx, param  # click's signature; the registry is all that is needed
    return sorted(name for name in _registered(Path.cwd()) if name.startswith(incomplete))


def _registered(cwd: Path) -> list[str]:
    from treefork.git import Repo
    from treefork.state import Registry

    try:
        return list(Registry(Repo.discover(cwd).common_dir).read().workspaces)
    except (FatalError, OSError):  # not a repository, an unreadable registry: nothing to offer
        return []
