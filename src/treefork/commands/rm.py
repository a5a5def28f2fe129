"""`treefork rm NAME...`: drop the database branch and remove the worktree, for each name.

Every name is checked before anything is removed; a workspace that cannot be removed (uncommitted changes)
does not stop the others, and each one's result is reported.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from treefork import exitcodes, output, shapes
from treefork.context import Context
from treefork.errors import FatalError
from treefork.workspace import remove

FAILED = {"db_dropped": False, "worktree_removed": False, "branch_deleted": False, "branch_kept_reason": None}


def run(names: tuple[str, ...], *, force: bool, delete_branch: bool, as_json: bool) -> int:
    ctx = Context.open()
    unique = list(dict.fromkeys(_here(ctx) if n == "." else n for n in names))
    _expect_all_removable(ctx, unique)
    ctx, left = remove.outside(ctx, unique)
    results: list[dict[str, Any]] = []
    for name in unique:
        try:
            results.append(
                {**asdict(remove.remove(ctx, name, force=force, delete_branch=delete_branch)), "error": None}
            )
        except FatalError as e:
            results.append({**FAILED, "name": name, "error": str(e)})
    if as_json:
        output.emit_json([shapes.record("removal", r) for r in results])
    else:
        for r in results:
            _report(r)
    if left is not None and not left.exists():
        output.info(f"your shell's directory {left} was removed with it: cd {ctx.repo.main_root}")
    failed = sum(r["error"] is not None for r in results)
    return exitcodes.OK if not failed else exitcodes.ERROR if failed == len(results) else exitcodes.PARTIAL


def _here(ctx: Context) -> str:
    """`.`: the workspace of the worktree this runs in (a tool's cleanup script runs in the worktree it removes)."""
    ws = ctx.state().workspace_by_path_or_none(ctx.repo.toplevel)
    if ws is None:
        raise FatalError(f"{ctx.repo.toplevel} is not a treefork workspace", hint="`treefork ls` lists them")
    return ws.name


def _expect_all_removable(ctx: Context, names: list[str]) -> None:
    state = ctx.state()
    state.expect_initialized()
    problems = []
    for name in names:
        try:
            remove.expect_removable(state, name)
        except FatalError as e:
            problems.append(e)
    if len(problems) == 1 and len(names) == 1:
        raise problems[0]
    if problems:
        raise FatalError(
            f"nothing was removed: {'; '.join(p.message for p in problems)}",
            hint="fix or leave out those names (`treefork ls` lists the workspaces), then retry",
        )


def _report(r: dict[str, Any]) -> None:
    if r["error"] is not None:
        output.error(f"{r['name']}: {r['error']}")
        return
    parts = ["database dropped" if r["db_dropped"] else "no database to drop"]
    parts.append("worktree removed" if r["worktree_removed"] else "worktree already gone")
    if r["branch_deleted"]:
        parts.append("branch deleted")
    output.info(f"removed workspace {r['name']}: " + ", ".join(parts))
    if r["branch_kept_reason"]:
        output.info(f"  {r['branch_kept_reason']}")
