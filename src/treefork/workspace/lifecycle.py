"""The lifecycle use cases after `new`: reset a workspace's database, run a command in it, and finding the
workspaces (and their parents) they and `diff` (diffs.py) and `merge` (merge.py) work on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from treefork import output
from treefork.backends.base import DbBranch
from treefork.context import Context
from treefork.errors import FatalError
from treefork.state import READY, State, Workspace


@dataclass(frozen=True)
class Side:
    """A workspace (or the root) as the lifecycle commands need it: its database and its worktree."""

    name: str  # "root" for the root
    db: DbBranch
    path: Path


def expect_ready(state: State, name: str) -> Workspace:
    ws = state.expect_workspace(name)
    if ws.status != READY or not ws.db_branch:
        raise FatalError(f"workspace {name!r} is not ready ({ws.status})", hint=ws.next_step())
    return ws


def side(ctx: Context, state: State, name: str | None) -> Side:
    """A workspace by name; None or "root" is the root (the main worktree)."""
    if name in (None, "root"):
        return Side("root", ctx.backend(state).root(), ctx.repo.main_root)
    ws = expect_ready(state, name)
    db = ws.db_ref_or_none()
    assert db is not None
    return Side(ws.name, db, Path(ws.path))


def parent_side(ctx: Context, state: State, ws: Workspace) -> Side:
    return side(ctx, state, ws.parent)


def current_workspace_name(ctx: Context, state: State) -> str:
    ws = state.workspace_by_path_or_none(ctx.repo.toplevel)
    if ws is None:
        raise FatalError(
            f"{ctx.repo.toplevel} is not a treefork workspace", hint="pass a name (treefork ls lists them)"
        )
    return ws.name


def env_of(ctx: Context, worktree: Path) -> dict[str, str]:
    """The process environment with the worktree's env file loaded over it (the file wins)."""
    from treefork.workspace import envbuild

    return {**os.environ, **envbuild.load_env(ctx.config.env_path(worktree))}


# ---- reset --------------------------------------------------------------------------------------


def reset(ctx: Context, name: str, *, source: str | None) -> dict[str, str]:
    state = ctx.state()
    state.expect_initialized()
    ws = expect_ready(state, name)
    target = side(ctx, state, name)
    origin = side(ctx, state, source) if source is not None else parent_side(ctx, state, ws)
    if origin.name == target.name:
        raise FatalError(f"cannot reset {name!r} from itself", hint="pass --from another workspace, or leave it out")
    backend = ctx.backend(state)
    from treefork import interrupts
    from treefork.workspace import forkpoint

    with interrupts.like_interrupts():  # SIGTERM, SIGHUP: the staging copy goes, as on ^C
        backend.reset_branch(target.db, source=origin.db)
    forkpoint.record(ctx, name, target.db)  # a reset re-forks: what it changed starts again from here
    return {"name": name, "parent": origin.name, "db_branch": target.db.name}


# ---- run ----------------------------------------------------------------------------------------


def run_in(ctx: Context, name: str, command: tuple[str, ...]) -> int:
    from treefork import proc

    if not command:
        raise FatalError("no command to run", hint="treefork run NAME -- CMD [ARGS...]")
    state = ctx.state()
    state.expect_initialized()
    found = side(ctx, state, name)
    where = found.path
    if not where.is_dir():
        raise FatalError(f"the worktree {where} is missing", hint=f"`treefork rm {name}`, or `treefork sync {name}`")
    output.info(f"running in {where}: {' '.join(command)}")
    refused = ctx.backend(state).watch(found.db)
    rc = proc.run_attached(*command, cwd=where, env=env_of(ctx, where))
    if rc != 0 and (fix := refused()):  # the command's own error said what; this says what to do here
        output.warn(output.printable(fix))
    return 128 - rc if rc < 0 else rc  # killed by signal N: the shell's 128+N
