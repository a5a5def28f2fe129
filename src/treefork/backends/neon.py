"""Neon backend (placeholder until the Neon issue lands)."""

from __future__ import annotations

from treefork.backends.base import BackendContext
from treefork.errors import FatalError


class NeonBackend:
    name = "neon"
    leaf_delete_only = True

    def __init__(self, ctx: BackendContext) -> None:
        raise FatalError("the neon backend is not available yet", hint="use the local backend: treefork init")
