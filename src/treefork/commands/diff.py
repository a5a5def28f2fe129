"""`treefork diff [NAME] [--all] [--against-parent]`: what a workspace changed in its schema since its fork
point (or, `--against-parent`, how it differs from its parent's current schema); `--all` adds the collisions
between workspaces, schema and migration files. Exit 0 when there is nothing, 4 (exitcodes.FOUND) when there
is a change or a collision; errors are 1. Names come from agents, so control characters print escaped."""

from __future__ import annotations

from treefork import exitcodes, output
from treefork.context import Context
from treefork.state import State
from treefork.workspace import collisions, diffs, lifecycle, reconcile


def run(name: str | None, *, all_: bool, against_parent: bool, as_json: bool) -> int:
    ctx = Context.open()
    state = ctx.state()
    state.expect_initialized()
    if all_:
        return _all(ctx, state, against_parent=against_parent, as_json=as_json)
    name = name or lifecycle.current_workspace_name(ctx, state)
    d = diffs.against_parent(ctx, state, name) if against_parent else diffs.since_fork(ctx, state, name)
    diffs.say_notes([d])
    if as_json:
        output.emit_json(d.to_json())
    elif d.diff:
        output.result(output.printable(d.diff.rstrip("\n")))
    return exitcodes.FOUND if d.diff else exitcodes.OK


def _all(ctx: Context, state: State, *, against_parent: bool, as_json: bool) -> int:
    if against_parent:
        found_diffs = [diffs.against_parent(ctx, state, n) for n in sorted(_ready(state))]
    else:
        found_diffs = diffs.diff_all(ctx, state)
    diffs.say_notes(found_diffs)
    found = collisions.all_of(ctx, state, found_diffs, reconcile.listed_worktrees(ctx))
    if as_json:
        output.emit_json([d.to_json([c.to_json() for c in found if c.involves(d.name)]) for d in found_diffs])
    else:
        _summary(found_diffs, found)
    return exitcodes.FOUND if found or any(d.diff for d in found_diffs) else exitcodes.OK


def _ready(state: State) -> list[str]:
    return [w.name for w in state.workspaces.values() if w.status == "ready" and w.db_branch]


def _summary(found_diffs: list[diffs.SchemaDiff], found: list[collisions.Collision]) -> None:
    rows = []
    for d in found_diffs:
        changed = ", ".join(f"{c.kind} {c.name} ({c.change})" for c in d.changes) or ("-" if not d.diff else "?")
        others = sorted({c.other(d.name) for c in found if c.involves(d.name)})
        rows.append([d.name, f"{d.base} ({d.against})", output.printable(changed), ", ".join(others)])
    output.table(["workspace", "compared with", "changed", "collides with"], rows)
    for c in found:
        output.result(output.printable(c.message()))
