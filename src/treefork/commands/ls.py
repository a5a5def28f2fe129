"""`treefork ls`: every workspace of this repo, from any of its worktrees."""

from __future__ import annotations

from typing import Any

from treefork import output, reconcile
from treefork.context import Context


def run(*, as_json: bool) -> int:
    ctx = Context.open()
    state = ctx.state()
    state.expect_initialized()
    rows = reconcile.rows(ctx, state)
    if as_json:
        output.emit_json(rows)
        return 0
    output.table(
        ["name", "branch", "parent", "database", "method", "status", "worktree", "path"],
        (
            [
                r["name"],
                r["branch"],
                r["parent"] or "",
                r["db_branch"],
                r["clone_method"],
                _status(r),
                r["worktree"],
                r["path"],
            ]
            for r in rows
        ),
    )
    return 0


def _status(row: dict[str, Any]) -> str:
    return str(row["status"]) + (f" ({row['error']})" if row.get("error") else "")
