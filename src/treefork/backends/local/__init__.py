"""The local backend: the embedded PostgreSQL 18 (one cluster per workspace, forked online; clusters.py), or
a server the user runs (`init --server-url`: CREATE DATABASE ... TEMPLATE; template.py)."""

from __future__ import annotations

from typing import Any

from treefork.backends.base import Backend, BackendContext


class LocalTraits:
    """What the local backend answers, whichever way it makes branches (clusters.py or template.py): a branch
    with children can be dropped, none expires, and connecting costs nothing."""

    name = "local"
    leaf_delete_only = False
    supports_ttl = False
    wakes_on_connect = False


# the backend setting that records treefork.toml's extensions made in every cluster (admin_extensions.py)
EXTENSIONS_DONE = "admin_extensions"


def extensions_pending(settings: dict[str, Any], names: tuple[str, ...]) -> bool | None:
    """Whether a repository of clusters has treefork.toml's extensions still to make (`treefork sync`), None where
    treefork makes none (a server the user runs). Read from the recorded settings alone, so an agent's
    `sync --quiet` imports and connects to nothing when all are made."""
    if settings.get("layout") != "clusters" or settings.get("external") or not names:
        return None
    done = settings.get(EXTENSIONS_DONE)
    return not isinstance(done, list) or not set(names) <= set(done)


def open_local(ctx: BackendContext) -> Backend:
    if ctx.settings.get("external"):
        from treefork.backends.local.template import TemplateBackend

        return TemplateBackend(ctx)
    if ctx.settings.get("layout") != "clusters":
        from treefork.errors import FatalError

        raise FatalError(
            "this repository was initialised by an older treefork (one shared PostgreSQL server for every repo)",
            hint="remove its workspaces with that version, or move .git/treefork aside "
            "(mv .git/treefork .git/treefork.old) and run `treefork init` again",
        )
    from treefork.backends.local.clusters import ClusterBackend

    return ClusterBackend(ctx)
