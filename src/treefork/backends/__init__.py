"""The backend registry: a plain dict from name to class, as pre-commit's all_languages."""

from __future__ import annotations

from treefork.backends import local, neon
from treefork.backends.base import Backend, BackendContext
from treefork.errors import FatalError

BACKENDS = {
    "local": local.LocalBackend,
    "neon": neon.NeonBackend,
}


def open_backend(name: str, ctx: BackendContext) -> Backend:
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise FatalError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKENDS)}") from None
    return cls(ctx)
