"""`treefork sync [NAME]`: finish provisioning a workspace whose worktree git made (default: this worktree's).

Idempotent: on a ready workspace it re-checks every step and rewrites nothing that is right.
"""

from __future__ import annotations

from pathlib import Path

from treefork import output, workspace
from treefork.context import Context
from treefork.errors import FatalError
from treefork.hooks import handlers
from treefork.names import WorkspaceName


def run(name: str | None, *, as_json: bool) -> int:
    ctx = Context.open()
    state = ctx.state()
    state.expect_initialized()
    req = _request(ctx, name)
    ws = workspace.create(ctx, req)
    if as_json:
        output.emit_json({**ws.to_json(), "env_file": str(Path(ws.path) / ctx.config.env_file)})
    else:
        output.info(
            f"workspace {ws.name} is {ws.status}: database {ws.db_branch} ({ws.clone_method}), "
            f"parent {ws.parent or 'root'}"
        )
    return 0


def _request(ctx: Context, name: str | None) -> workspace.NewRequest:
    state = ctx.state()
    ws = state.expect_workspace(name) if name else state.workspace_by_path_or_none(ctx.repo.toplevel)
    if ws is not None:
        return workspace.NewRequest(
            name=WorkspaceName(ws.name),
            branch=ws.branch,
            path=Path(ws.path),
            parent=ws.parent,
            origin=ws.origin,
            adopt_worktree=True,
        )
    if not ctx.repo.is_linked_worktree:
        raise FatalError(
            "the main worktree is the root workspace; there is nothing to sync",
            hint="run `treefork sync` inside a linked worktree, or `treefork sync NAME`",
        )
    branch = ctx.repo.current_branch(ctx.repo.toplevel)
    if branch is None:
        raise FatalError(
            f"{ctx.repo.toplevel} is on a detached HEAD",
            hint="give it a branch first: git switch -c NAME, then `treefork sync`",
        )
    head = ctx.repo.head_of(ctx.repo.toplevel) or ""
    return handlers.adoption_request(ctx, ctx.repo.toplevel, branch=branch, new_head=head, invoker=None)
