"""The backend registry: a plain dict from name to the function that opens it (as pre-commit's
all_languages), typed against the Backend Protocol. Each backend's package is imported on first use, so a
command pays only for the backend it uses."""

from __future__ import annotations

from collections.abc import Callable

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
