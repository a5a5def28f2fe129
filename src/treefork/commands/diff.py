"""`treefork diff [NAME] [--all]`: the schema difference between a workspace's database and its parent's.
Exit 0 when there is none, 4 (exitcodes.FOUND) when there is one; errors are 1."""

from __future__ import annotations

from treefork import exitcodes, output
from treefork.context import Context
from treefork.workspace import lifecycle


def run(name: str | None, *, all_: bool, as_json: bool) -> int:
    ctx = Context.open()
    state = ctx.state()
    state.expect_initialized()
    if all_:
        diffs = lifecycle.diff_all(ctx, state)
    else:
        diffs = [lifecycle.schema_diff(ctx, state, name or lifecycle.current_workspace_name(ctx, state))]
    if as_json:
        output.emit_json([d.to_json() for d in diffs] if all_ else diffs[0].to_json())
    elif all_:
        _summary(diffs)
    elif diffs[0].diff:
        output.result(diffs[0].diff.rstrip("\n"))
    return exitcodes.FOUND if any(d.diff for d in diffs) else exitcodes.OK


def _summary(diffs: list[lifecycle.SchemaDiff]) -> None:
    seen: dict[str, list[str]] = {}
    for d in diffs:
        for t in d.tables:
            seen.setdefault(t, []).append(d.name)
    rows = []
    for d in diffs:
        shared = sorted(t for t in d.tables if len(seen[t]) > 1)
        rows.append(
            [d.name, d.base, ", ".join(sorted(d.tables)) or ("-" if not d.diff else "(no tables)"), ", ".join(shared)]
        )
    output.table(["workspace", "base", "tables changed", "also changed elsewhere"], rows)
