"""`treefork rm NAME`: drop the database branch and remove the worktree."""

from __future__ import annotations

from dataclasses import asdict

from treefork import output, workspace
from treefork.context import Context


def run(names: tuple[str, ...], *, force: bool, delete_branch: bool, as_json: bool) -> int:
    ctx = Context.open()
    results = [workspace.remove(ctx, name, force=force, delete_branch=delete_branch) for name in names]
    if as_json:
        output.emit_json([asdict(r) for r in results])
        return 0
    for r in results:
        parts = [f"removed workspace {r.name}"]
        parts.append("database dropped" if r.db_dropped else "no database to drop")
        parts.append("worktree removed" if r.worktree_removed else "worktree already gone")
        if r.branch_deleted:
            parts.append("branch deleted")
        output.info(": ".join(parts[:1]) + ": " + ", ".join(parts[1:]))
        if r.branch_kept_reason:
            output.info(f"  {r.branch_kept_reason}")
    return 0
