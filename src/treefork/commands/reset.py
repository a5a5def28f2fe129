"""`treefork reset NAME [--from WORKSPACE]`: put a workspace's database back to its parent's current state."""

from __future__ import annotations

from treefork import output, shapes
from treefork.context import Context
from treefork.workspace import lifecycle


def run(name: str, *, source: str | None, as_json: bool) -> int:
    ctx = Context.open()
    result = lifecycle.reset(ctx, name, source=source)
    if as_json:
        output.emit_json(shapes.record("reset", result))
    else:
        output.info(
            f"reset {name}'s database {result['db_branch']} to {result['parent']}'s current state; URL unchanged"
        )
    return 0
