"""The backend registry: a plain dict from name to the function that opens it (as pre-commit's
all_languages), typed against the Backend Protocol. Each backend's package is imported on first use, so a
command pays only for the backend it uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treefork.backends.base import Backend, BackendContext
from treefork.errors import FatalError


def _local(ctx: BackendContext) -> Backend:
    from treefork.backends.local import open_local

    return open_local(ctx)


def _neon(ctx: BackendContext) -> Backend:
    from treefork.backends.neon import NeonBackend

    return NeonBackend(ctx)


BACKENDS: dict[str, Callable[[BackendContext], Backend]] = {"local": _local, "neon": _neon}


def open_backend(name: str, ctx: BackendContext) -> Backend:
    try:
        opener = BACKENDS[name]
    except KeyError:
        raise FatalError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKENDS)}") from None
    return opener(ctx)


# What `init` needs to know of a backend before one exists: each answer here, so that no code outside backends/
# tests a backend's name.


def takes_server_url(name: str) -> bool:
    """`init --server-url`: the local backend on a PostgreSQL server the user runs."""
    return name == "local"


def runs_own_postgres(name: str, server_url: str | None) -> bool:
    """`init --postgres`: the local backend's clusters, on the binaries chosen (backends/local/binaries.py)."""
    return name == "local" and not server_url


def imports_main_database(name: str, server_url: str | None) -> bool:
    """Whether `init` copies the main worktree's dev database into the root unless told not to: the embedded
    local backend does (its root is a new cluster); a server the user runs and Neon already hold their data."""
    return name == "local" and not server_url


def extensions_pending(name: str, settings: dict[str, Any], names: tuple[str, ...]) -> bool | None:
    """Whether treefork.toml's extensions are still to make (`treefork sync`), from the recorded settings alone
    (an agent's `sync --quiet` then opens no backend); None where treefork makes none (a server the user runs,
    Neon)."""
    if name != "local":
        return None
    from treefork.backends.local import extensions_pending as local_pending

    return local_pending(settings, names)


def init_settings(name: str, server_url: str | None, dbname: str, options: dict[str, Any]) -> dict[str, Any]:
    """The backend settings `init` records in the registry. dbname: the root's database name (the imported
    database's own)."""
    from treefork import paths

    settings: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if name == "local" and server_url:
        settings["external"] = True
        settings["workspace_roles"] = True  # each workspace's database owned by a role of its own (template.py)
    elif name == "local":
        settings["layout"] = "clusters"
        settings["home"] = str(paths.treefork_home())
        settings["dbname"] = dbname
    return settings
