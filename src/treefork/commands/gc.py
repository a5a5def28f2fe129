"""`treefork gc`: drop database branches whose workspace is provably gone."""

from __future__ import annotations

from treefork import output, shapes
from treefork.context import Context
from treefork.workspace import reconcile


def run(*, dry_run: bool, as_json: bool) -> int:
    ctx = Context.open()
    from treefork.workspace import reclaim

    actions = reclaim.run(ctx, dry_run=dry_run) + reconcile.gc(ctx, dry_run=dry_run)
    if not dry_run:
        from treefork.backends import schema_diff

        schema_diff.sweep_dead_dumps()  # a dump's passfile left by a process killed mid-dump
    if as_json:
        output.emit_json(shapes.record("gc", {"dry_run": dry_run, "actions": [a.to_json() for a in actions]}))
        return 0
    if not actions:
        output.info("nothing to collect: every database branch has its workspace")
        return 0
    verb = "would drop" if dry_run else "dropped"
    output.table(
        ["workspace", "database", "action", "reason"],
        (
            [
                a.workspace,
                a.db_branch or "",
                (verb if a.db_branch else "would forget" if dry_run else "forgot")
                if (dry_run or a.done)
                else "skipped",
                a.reason,
            ]
            for a in actions
        ),
    )
    return 0
