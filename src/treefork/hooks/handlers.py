"""The Python side of the git hooks. Both handlers must never fail the git command: they catch every
error, say it loudly on stderr, and return 0.

post-checkout (new linked worktree on a branch): provision a workspace for it.
reference-transaction (committed branch deletions): drop the database of a workspace whose branch and
worktree are both gone; follow a branch rename instead of dropping.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from treefork import debug, output, selfcmd
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import IN_PROGRESS_ENV, ZERO_SHA
from treefork.state import Workspace
from treefork.workspace import adopt
from treefork.workspace import parent as parent_rule


def post_checkout(prev: str, new: str, flag: str) -> int:
    if flag != "1" or prev != ZERO_SHA or os.environ.get(IN_PROGRESS_ENV):
        return 0
    try:
        _post_checkout(Path.cwd(), new_head=new)
    except FatalError as e:
        output.error(f"post-checkout: this worktree was NOT provisioned: {e}")
        output.info(
            "  its DATABASE_URL points nowhere (it fails loudly); fix the cause, then run `treefork sync` in it"
        )
    except Exception as e:  # a bug must not break `git worktree add` either
        output.error(f"post-checkout: unexpected {type(e).__name__}: {e}; run `treefork sync` in the new worktree")
    return 0


def _post_checkout(cwd: Path, *, new_head: str) -> None:
    ctx = Context.open(cwd)
    repo = ctx.repo
    if not repo.is_linked_worktree:
        return  # `git clone` (or a main-worktree checkout): nothing to provision
    state = ctx.state()
    if not state.initialized:
        return
    root = repo.toplevel
    here = state.workspace_by_path_or_none(root)
    if here is not None and here.in_progress_elsewhere():
        return  # `treefork new` or `treefork claude-hook create` is making this very worktree
    debug.crash_point("post-checkout:start")
    # First, before anything slow: an env file whose URL fails loudly, so that a hook killed from here on
    # (^C to git's process group, SIGTERM) leaves that rather than no file, where the app would fall back to
    # SQLite or, nested in the main worktree (.claude/worktrees, .gemini/worktrees), find main's `.env`.
    adopt.fail_loud(ctx, root, None)
    debug.crash_point("post-checkout:after-placeholder")
    branch = repo.current_branch(root)
    owner = None if here is not None or branch is None else state.workspace_by_branch_or_none(branch)
    if owner is not None and _elsewhere(owner, root):
        doing = f"being created by process {owner.pid}" if owner.in_progress_elsewhere() else "checked out"
        raise FatalError(
            f"branch {branch} is workspace {owner.name!r}'s, {doing} at {owner.path}: this second worktree on it "
            "gets no database of its own",
            hint=f"give it a branch of its own (git -C {root} switch -c NEWNAME), then `treefork sync` there; "
            f"or remove it (git worktree remove --force {root})",
        )
    output.info(f"treefork: provisioning {root}")
    req = adopt.request_for(
        ctx, root, branch=branch, origin="post-checkout", new_head=new_head, invoker=parent_rule.invoking_worktree()
    )
    ws = adopt.provision(ctx, req)
    output.info(
        f"treefork: workspace {ws.name} is ready (parent {ws.parent or 'root'}): database {ws.db_branch} "
        f"({ws.clone_method}), env file {ctx.config.env_path(root)}"
    )


def _elsewhere(ws: Workspace, root: Path) -> bool:
    """ws (found by its branch) is another worktree's, being made or still there."""
    path = Path(ws.path)
    if path.resolve() == root.resolve():
        return False
    return ws.in_progress_elsewhere() or path.is_dir()


# ---- reference-transaction ----------------------------------------------------------------------


def deleted_branches(lines: Iterable[str]) -> list[str]:
    """Local branches that the transaction deleted (deduped, in order). Unparseable lines are ignored."""
    seen: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or parts[1] != ZERO_SHA or not parts[2].startswith("refs/heads/"):
            continue
        branch = parts[2].removeprefix("refs/heads/")
        if branch not in seen:
            seen.append(branch)
    return seen


def reference_transaction(state_arg: str, lines: Iterable[str]) -> int:
    if state_arg != "committed" or os.environ.get(IN_PROGRESS_ENV):
        return 0
    try:
        branches = deleted_branches(lines)
        if branches:
            _forget_deleted(Context.open(Path.cwd()), branches)
    except FatalError as e:
        output.error(f"reference-transaction: {e}")
    except Exception as e:
        output.error(f"reference-transaction: unexpected {type(e).__name__}: {e}; `treefork gc` cleans up later")
    return 0


def _forget_deleted(ctx: Context, branches: list[str]) -> None:
    state = ctx.state()
    if not state.initialized:
        return
    from treefork.workspace import reconcile

    branches = reconcile.confirmed_deletions(ctx, branches)  # git pack-refs/gc report packed refs as deletions
    listed = reconcile.listed_worktrees(ctx)
    for branch in branches:
        ws = state.workspace_by_branch_or_none(branch)
        if ws is None or ws.in_progress_elsewhere():
            continue  # not ours, or another treefork command is handling it
        tree = listed.get(Path(ws.path).resolve())
        now = tree.branch if tree is not None and reconcile.worktree_state(ws, listed) == "present" else None
        if now and now != branch and ctx.repo.branch_exists(now):
            _follow_rename(ctx, ws.name, now)  # `git branch -m`: the worktree now carries the new name
        elif reconcile.worktree_state(ws, listed) != "present":
            _drop(ctx, ws.name)
        elif now == branch and not ctx.repo.branch_exists(branch):
            _spawn_follower(ws.name, branch)  # `git branch -m` deletes first, writes the new name after we return
        elif now is None and not ctx.repo.branch_exists(branch):
            output.warn(
                f"treefork: branch {branch} of workspace {ws.name} was deleted but its worktree {ws.path} remains; "
                f"`treefork rm {ws.name}` removes both"
            )


def _spawn_follower(name: str, old_branch: str) -> None:
    from treefork import proc
    from treefork.git import no_git_env

    proc.spawn_detached(*selfcmd.argv("hook", "follow-rename", name, old_branch), env=no_git_env())


def follow_rename(name: str, old_branch: str, *, timeout: float = 10.0) -> int:
    """Runs detached: wait until the worktree's HEAD names an existing branch other than the old one, then
    move the workspace to it. A deletion that was no rename leaves the workspace alone (`treefork rm` removes it)."""
    import time

    try:
        ctx = Context.open(Path.cwd())
        ws = ctx.state().workspaces.get(name)
        deadline = time.monotonic() + timeout
        while ws is not None and time.monotonic() < deadline:
            now = ctx.repo.current_branch(Path(ws.path))
            if now and now != old_branch and ctx.repo.branch_exists(now):
                _follow_rename(ctx, name, now)
                return 0
            time.sleep(0.05)
    except Exception as e:
        output.error(f"follow-rename: {e}")
    return 0


def _follow_rename(ctx: Context, name: str, new_branch: str) -> None:
    with ctx.registry.transaction() as st:
        ws = st.workspaces.get(name)
        if ws is None:
            return
        old, ws.branch = ws.branch, new_branch
    output.info(f"treefork: workspace {name} follows the rename {old} -> {new_branch} (database kept)")


def _drop(ctx: Context, name: str) -> None:
    from treefork.workspace import reconcile

    ws = reconcile.drop_if_gone(ctx, name)
    if ws is None:
        return
    ctx.repo.prune_worktrees()
    output.info(
        f"treefork: branch {ws.branch} and worktree of workspace {name} are gone: "
        f"{'dropped database ' + ws.db_branch if ws.db_branch else 'forgot it'}"
    )


def read_stdin_lines() -> list[str]:
    return sys.stdin.read().splitlines() if not sys.stdin.isatty() else []
