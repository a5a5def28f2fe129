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
    result: list[dict[str, Any]] = [
        {
            "name": "root",
            "is_root": True,
            "branch": ctx.repo.current_branch(main),
            "path": str(main),
            "parent": None,
            "backend": state.backend,
            "db_branch": state.root_db_branch,
            "clone_method": state.root_clone_method,
            "status": "ready",
            "worktree": "present",
        }
    ]
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        result.append(
            {
                "name": ws.name,
                "is_root": False,
                "branch": ws.branch,
                "path": ws.path,
                "parent": ws.parent or "root",
                "backend": state.backend,
                "db_branch": ws.db_branch,
                "clone_method": ws.clone_method,
                "status": ws.status,
                "worktree": worktree_state(ws, listed),
                "origin": ws.origin,
                "error": ws.error,
            }
        )
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
            actions.append(
                GcAction(
                    ws.name, ws.db_branch, "drop" if ws.db_branch else "forget", reason, db_id=ws.db_id or ws.db_branch
                )
            )
    for db in ctx.backend(state).list_branches():
        if db.workspace not in state.workspaces:
            actions.append(
                GcAction(
                    db.workspace or "?",
                    db.name,
                    "drop",
                    "no workspace in the registry owns it (left by a crash)",
                    db_id=db.id,
                )
            )
    return actions


def drop_if_gone(ctx: Context, name: str) -> Workspace | None:
    """Under the lock, re-check that the workspace is provably gone; if so drop its database and forget it."""
    with ctx.registry.transaction() as st:
        ws = st.workspaces.get(name)
        if ws is None or not _is_gone(ws, listed_worktrees(ctx)):
            return None
        if ws.db_branch:
            db: DbBranch | None = DbBranch(name=ws.db_branch, id=ws.db_id or ws.db_branch, workspace=name)
        else:  # killed before the registry learnt its database: the backend may still hold a (half-made) one
            db = ctx.backend().find_branch_or_none(name)
        if db is not None:
            ctx.backend().delete_branch(db)
        return st.forget(name)


def gc(ctx: Context, *, dry_run: bool) -> list[GcAction]:
    actions = plan(ctx)
    if dry_run:
        return actions
    for act in actions:
        if act.reason.startswith("its worktree"):
            act.done = drop_if_gone(ctx, act.workspace) is not None
        else:
            act.done = _drop_orphan(ctx, act)
        if act.done:
            output.info(f"{'dropped ' + act.db_branch if act.db_branch else 'forgot'} ({act.workspace}): {act.reason}")
    if any(a.done for a in actions):
        ctx.repo.prune_worktrees()
    return actions


def _drop_orphan(ctx: Context, act: GcAction) -> bool:
    """A marked database no registry entry owns; re-checked under the lock (a `new` may have just recorded it)."""
    with ctx.registry.transaction() as st:
        if act.workspace in st.workspaces or not act.db_branch:
            return False
        ctx.backend().delete_branch(
            DbBranch(name=act.db_branch, id=act.db_id or act.db_branch, workspace=act.workspace)
        )
        return True
