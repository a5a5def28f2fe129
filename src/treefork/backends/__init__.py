"""The backend registry: a plain dict from name to the class that implements it (as pre-commit's
all_languages). Modules are imported on first use, so a command pays only for the backend it uses."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from treefork.backends.base import Backend, BackendContext
from treefork.errors import FatalError

BACKENDS = {
    "local": "treefork.backends.local:LocalBackend",
    "neon": "treefork.backends.neon:NeonBackend",
}


def backend_class(name: str) -> Callable[[BackendContext], Backend]:
    try:
        module, _, cls = BACKENDS[name].partition(":")
    except KeyError:
        raise FatalError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKENDS)}") from None
    found: Callable[[BackendContext], Backend] = getattr(importlib.import_module(module), cls)
    return found


def open_backend(name: str, ctx: BackendContext) -> Backend:
    return backend_class(name)(ctx)
