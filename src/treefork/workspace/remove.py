"""Removing a workspace: its worktree (only its own, re-identified the way git does), its database, and its
branch (only one treefork created, and only when merged or asked). The intent is recorded first, so a
crash leaves a `removing` workspace that a re-run of `treefork rm` finishes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from treefork import debug
from treefork.context import Context
from treefork.errors import FatalError
from treefork.state import REMOVING, State, Workspace

if TYPE_CHECKING:
    from treefork.git import Worktree
    from treefork.workspace import reconcile

RESERVED = {"root"}  # the root workspace's name: the main worktree and the root database


@dataclass(frozen=True)
class RemoveResult:
    name: str
    db_dropped: bool
    worktree_removed: bool
    branch_deleted: bool
    branch_kept_reason: str | None


def remove(
    ctx: Context, name: str, *, force: bool = False, delete_branch: bool = False, state: State | None = None
) -> RemoveResult:
    """state: the caller's reading of the registry, if it has one; the children are counted again under the lock."""
    state = ctx.state() if state is None else state
    state.expect_initialized()
    ws = expect_removable(state, name)
    _check_children(ctx, state, ws)
    from treefork.workspace import reconcile

    # the git lock is held from the one listing to the removal: no treefork command adds or removes a worktree between
    with ctx.registry.git_lock():
        listed = reconcile.listed_worktrees(ctx)
        where = reconcile.locate(ws, listed)
        _expect_nothing_nested(ctx, state, name, where, listed)
        _expect_clean(ctx, name, where, force=force)
        if db := ws.db_ref_or_none():
            ctx.backend().expect_deletable(db)  # a database treefork would refuse to drop: nothing is removed
        with ctx.registry.transaction() as st:
            _check_children(ctx, st, st.expect_workspace(name))  # none made since it was read
            st.workspaces[name].status = REMOVING
        debug.crash_point("rm:after-intent")
        worktree_removed = _remove_worktree(ctx, where, force=force)  # git's own dirty check is the last gate
    _release_extras(ctx, state, ws)
    debug.crash_point("rm:after-worktree")
    db_dropped = drop_db(ctx, ws)
    debug.crash_point("rm:after-db")
    deleted, reason = _maybe_delete_branch(ctx, state, ws, force_delete=delete_branch)
    if where.state == "reused" and where.tree is not None:
        reason = f"the worktree at {where.tree.path} is not this workspace's (it is on {where.tree.branch or 'a detached HEAD'}); kept. {reason or ''}".strip()
    with ctx.registry.transaction() as st:
        st.forget(name)
    return RemoveResult(name, db_dropped, worktree_removed, deleted, reason)


def outside(ctx: Context, names: list[str], state: State | None = None) -> tuple[Context, Path | None]:
    """Run from inside a worktree about to be removed (`rm` or `merge` typed in it), move to the main worktree
    first: git, and every later step, must not run in a directory that is about to go. Returns the context to
    go on with (opened there when it moved) and the directory it left, if any."""
    here = Path.cwd()
    state = ctx.state() if state is None else state
    for name in names:
        ws = state.workspaces.get(name)
        if ws is not None and ws.path and here.is_relative_to(Path(ws.path)):
            os.chdir(ctx.repo.main_root)
            return Context.open(ctx.repo.main_root), here
    return ctx, None


def expect_removable(state: State, name: str) -> Workspace:
    if name in RESERVED:
        raise FatalError(
            "the root workspace cannot be removed: it is the main worktree and the root database",
            hint="remove the other workspaces with `treefork rm NAME`; `treefork ls` lists them",
        )
    return state.expect_workspace(name)


def _check_children(ctx: Context, state: State, ws: Workspace) -> None:
    children = sorted(w.name for w in state.workspaces.values() if w.parent == ws.name)
    if children and ctx.backend(state).leaf_delete_only:
        raise FatalError(
            f"workspace {ws.name!r} has child workspaces: {', '.join(children)}",
            hint=f"remove them first (treefork rm {children[0]}); {ctx.backend(state).name} cannot delete a parent branch before its children",
        )


def drop_db(ctx: Context, ws: Workspace) -> bool:
    db = ws.db_ref_or_none() or ctx.backend().find_branch_or_none(ws.name)
    if db is None:
        return False
    ctx.backend().delete_branch(db)
    return True


def _expect_nothing_nested(
    ctx: Context, state: State, name: str, where: reconcile.Location, listed: dict[Path, Worktree]
) -> None:
    """Removing a worktree deletes everything under it: never another worktree's files, even with --force."""
    if where.state != "present" or where.tree is None:
        return
    outer = where.tree.path.resolve()
    inner = sorted(p for p in listed if outer in p.parents)
    if inner:
        owner = next((w.name for w in state.workspaces.values() if Path(w.path).resolve() == inner[0]), None)
        raise FatalError(
            f"the worktree {inner[0]} lies inside {name}'s worktree {outer}; removing {name} would delete its files",
            hint=f"remove it first (`treefork rm {owner}`)"
            if owner
            else f"move it out first: git worktree move {inner[0]} <elsewhere>",
        )


def _expect_clean(ctx: Context, name: str, where: reconcile.Location, *, force: bool) -> None:
    path = where.tree.path if where.state == "present" and where.tree else None
    if path is not None and path.exists() and not force and ctx.repo.is_dirty(path):
        raise FatalError(
            f"worktree {path} has uncommitted changes",
            hint=f"commit or stash them, or `treefork rm {name} --force` to discard them",
        )


def _remove_worktree(ctx: Context, where: reconcile.Location, *, force: bool) -> bool:
    """Remove the workspace's own worktree, identified under the git lock the caller holds since it listed
    the worktrees; never one that sits at its path for another branch (that one is `reused`, not `present`)."""
    if where.state != "present" or where.tree is None:
        return False
    # ignored files (our env file, build output) do not stop git; modified or untracked ones do
    ctx.repo.remove_worktree(where.tree.path, force=force)
    return True


def _maybe_delete_branch(ctx: Context, state: State, ws: Workspace, *, force_delete: bool) -> tuple[bool, str | None]:
    branch = ws.branch
    if not branch or not ctx.repo.branch_exists(branch):
        return False, None
    if not ws.created_branch:
        return False, f"branch {branch} was not created by treefork; kept (delete it yourself: git branch -D {branch})"
    from treefork.workspace import reconcile

    listed = reconcile.listed_worktrees(ctx)  # read after the removal: the worktree list has changed
    if any(w.branch == branch for w in listed.values()):
        return False, f"branch {branch} is checked out in another worktree"
    into = _parent_ref(ctx, state, ws, listed)
    if force_delete or (into and ctx.repo.is_merged(branch, into=into)):
        with ctx.registry.git_lock():
            ctx.repo.delete_branch(branch)
        return True, None
    return False, f"branch {branch} is not merged into {into or 'its parent'}; kept (delete it with --delete-branch)"


def _parent_ref(ctx: Context, state: State, ws: Workspace, listed: dict[Path, Worktree]) -> str | None:
    parent = state.workspaces.get(ws.parent) if ws.parent else None
    where = Path(parent.path) if parent else ctx.repo.main_root
    return ctx.repo.head_in(where, listed) if where.exists() else None


def _release_extras(ctx: Context, state: State, ws: Workspace) -> None:
    """What `new` gave the workspace besides its worktree and database: its ports, its agent's tmux session, its
    fork point."""
    from treefork.workspace import forkpoint

    forkpoint.forget(ctx, ws.name)
    if ctx.config.ports:
        from treefork.workspace import ports

        ports.release(ctx.repo.common_dir, ws.name, Path(ws.path))
    from treefork.agents import tmux

    tmux.kill(tmux.session_name(state.repo_id, ctx.repo.name, ws.name), Path(ws.path))
