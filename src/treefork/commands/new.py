"""`treefork new NAME`: a worktree, a git branch, a database branch and an env file, in one command."""

from __future__ import annotations

import time
from pathlib import Path

from treefork import output
from treefork.backends.base import CreateOptions
from treefork.backends.neon.ttl import parse_ttl
from treefork.context import Context
from treefork.errors import FatalError
from treefork.names import WorkspaceName
from treefork.state import READY
from treefork.workspace import create
from treefork.workspace import parent as parent_rule


def run(
    name: str,
    *,
    parent: str | None,
    branch: str | None,
    path: str | None,
    terminate_blockers: bool,
    ttl: str | None,
    as_json: bool,
    agent: str | None = None,
    prompt: str | None = None,
    base: str | None = None,
) -> int:
    ws_name = WorkspaceName.of(name)
    if branch is not None:
        WorkspaceName.of(branch)
    ctx = Context.open()
    state = ctx.state()
    if ttl is not None and not (state.initialized and ctx.backend(state).supports_ttl):
        raise FatalError(
            f"--ttl only applies to a backend whose branches expire (neon); this repository uses "
            f"{state.backend or 'none yet'}",
            hint="leave --ttl out (local workspaces last until `treefork rm`)",
        )
    before = state.workspaces.get(ws_name)
    existed = before is not None and before.status == READY
    started = time.perf_counter()
    req = create.NewRequest(
        name=ws_name,
        parent=parent_rule.for_new(ctx, state, parent, ws_name),
        branch=branch,
        base=base,
        path=Path(path).absolute() if path else None,
        options=CreateOptions(
            terminate_blockers=terminate_blockers, ttl_seconds=parse_ttl(ttl or ctx.config.neon.get("ttl") or None)
        ),
    )
    ws = create.create(ctx, req, state=state)
    state.workspaces[ws.name] = ws  # as its last change left it: what --json shows, without reading it again
    from treefork.agents import claude_worktree

    claude_worktree.share_settings(ctx.repo, Path(ws.path))
    elapsed = time.perf_counter() - started
    if agent:
        from treefork.commands import attach

        attach.start_agent(ctx, ws, agent, prompt)
    if as_json:
        from treefork.workspace import views

        output.emit_json(views.workspace_json(ctx, ws.name, state, seconds=round(elapsed, 3), existed=existed))
    elif existed:
        made_by = "" if ws.origin == "new" else f" (made by {ws.origin}, e.g. `copilot --worktree {ws.name}`)"
        output.info(
            f"workspace {ws.name} already exists{made_by}: {ws.path} on branch {ws.branch}, database "
            f"{ws.db_branch}; checked, nothing to do"
        )
        output.result(ws.path)
    else:
        output.info(
            f"workspace {ws.name}: {ws.path} on branch {ws.branch}, database {ws.db_branch} "
            f"({ws.clone_method}) forked from {ws.parent or 'root'} in {elapsed:.2f}s"
        )
        output.result(ws.path)
    return 0
