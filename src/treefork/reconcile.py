"""Reconciling the registry and the backend with git: what `ls` shows and what `gc` drops."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from treefork import output
from treefork.backends.base import DbBranch
from treefork.context import Context
from treefork.git import Worktree
from treefork.state import CREATING, State, Workspace, pid_alive


@dataclass
class GcAction:
    workspace: str
    db_branch: str | None
    action: str  # drop | forget
    reason: str
    db_id: str | None = None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def worktree_state(ws: Workspace, listed: dict[Path, Worktree]) -> str:
    """present | missing | prunable"""
    tree = listed.get(Path(ws.path).resolve())
    if tree is None:
        return "missing"
    if tree.prunable or not Path(ws.path).exists():
        return "prunable"
    return "present"


def listed_worktrees(ctx: Context) -> dict[Path, Worktree]:
    return {w.path.resolve(): w for w in ctx.repo.worktrees()}


def rows(ctx: Context, state: State) -> list[dict[str, Any]]:
    listed = listed_worktrees(ctx)
    main = ctx.repo.main_root
    result: list[dict[str, Any]] = [{
        "name": "root", "is_root": True, "branch": ctx.repo.current_branch(main), "path": str(main), "parent": None,
        "backend": state.backend, "db_branch": state.root_db_branch, "clone_method": state.root_clone_method,
        "status": "ready", "worktree": "present",
    }]
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        result.append({
            "name": ws.name, "is_root": False, "branch": ws.branch, "path": ws.path, "parent": ws.parent or "root",
            "backend": state.backend, "db_branch": ws.db_branch, "clone_method": ws.clone_method,
            "status": ws.status, "worktree": worktree_state(ws, listed), "origin": ws.origin, "error": ws.error,
        })
    return result


def _is_gone(ws: Workspace, listed: dict[Path, Worktree]) -> str | None:
    """Why the workspace is provably gone, or None if it is not."""
    if ws.status == CREATING and pid_alive(ws.pid):
        return None  # being created right now
    where = worktree_state(ws, listed)
    if where == "present":
        return None
    return f"its worktree {ws.path} is {'gone' if where == 'missing' else 'gone (prunable)'}"


def plan(ctx: Context) -> list[GcAction]:
    state = ctx.state()
    state.expect_initialized()
    listed = listed_worktrees(ctx)
    actions = []
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        reason = _is_gone(ws, listed)
        if reason:
            actions.append(GcAction(ws.name, ws.db_branch, "drop" if ws.db_branch else "forget", reason, db_id=ws.db_id or ws.db_branch))
    for db in ctx.backend(state).list_branches():
        if db.workspace not in state.workspaces:
            actions.append(GcAction(db.workspace or "?", db.name, "drop", "no workspace in the registry owns it (left by a crash)", db_id=db.id))
    return actions


def gc(ctx: Context, *, dry_run: bool) -> list[GcAction]:
    actions = plan(ctx)
    if dry_run:
        return actions
    backend = ctx.backend()
    for act in actions:
        with ctx.registry.transaction() as st:  # re-check under the lock: a `new` may have started meanwhile
            ws = st.workspaces.get(act.workspace)
            if ws is not None and (ws.db_branch != act.db_branch or not _is_gone(ws, listed_worktrees(ctx))):
                continue
            if ws is None and act.reason.startswith("its worktree"):
                continue
            if act.db_branch:
                backend.delete_branch(DbBranch(name=act.db_branch, id=act.db_id or act.db_branch, workspace=act.workspace))
            st.workspaces.pop(act.workspace, None)
            for child in st.workspaces.values():
                if ws is not None and child.parent == act.workspace:
                    child.parent = ws.parent
            act.done = True
            output.info(f"{'dropped ' + act.db_branch if act.db_branch else 'forgot'} ({act.workspace}): {act.reason}")
    if any(a.done for a in actions):
        ctx.repo.prune_worktrees()
    return actions
