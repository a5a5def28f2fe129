"""`treefork gc` reclaims agent worktrees no hook will remove (`claude -p -w`, subagent worktrees): the
worktree, its branch and its database go when owner.keep_reason finds nothing to lose. See agents/owner.py."""

from __future__ import annotations

from pathlib import Path

from treefork import output
from treefork.agents import owner
from treefork.context import Context
from treefork.state import READY
from treefork.workspace import remove
from treefork.workspace.reconcile import GcAction

AGENT_ORIGINS = ("claude",)


def run(ctx: Context, *, dry_run: bool) -> list[GcAction]:
    state = ctx.state()
    actions = []
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        path = Path(ws.path)
        if ws.origin not in AGENT_ORIGINS or ws.status != READY or not path.is_dir():
            continue
        if owner.keep_reason(ctx.repo, path, ws.branch, check_owner=True, check_dirty=True):
            continue
        act = GcAction(ws.name, ws.db_branch, "reclaim", f"leftover {ws.origin} worktree: its agent exited, "
                       "it is clean and every commit is on another branch")  # fmt: skip
        if not dry_run:
            remove.remove(ctx, ws.name, force=False, delete_branch=True)
            act.done = True
            output.info(f"reclaimed {ws.name}: worktree {ws.path}, branch {ws.branch} and its database")
        actions.append(act)
    return actions
