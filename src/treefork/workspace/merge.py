"""`treefork merge NAME`, all or nothing: git merge into the parent's branch in the parent's worktree, the
`migrate` command against the parent's database, then removal as `rm` does.

Before anything changes, the parent's worktree must be clean; so if a later step fails (a conflict, a failing
migration, ^C), `git reset --hard <head before>` puts its code back exactly, and the database snapshot taken
just before migrating puts its data back. The rollback itself ignores further ^C.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from treefork import dbsettings, output, proc
from treefork.backends.base import DbBranch
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import git
from treefork.state import State, Workspace
from treefork.workspace import remove
from treefork.workspace.lifecycle import Side, env_of, expect_method, expect_ready, parent_side


@dataclass
class MergeResult:
    name: str
    into: str  # the parent workspace ("root" for the main worktree)
    parent_branch: str
    head_before: str
    head_after: str
    migrated: bool
    removed: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return dict(vars(self))


def merge(ctx: Context, name: str, *, keep: bool) -> MergeResult:
    state = ctx.state()
    state.expect_initialized()
    ws = expect_ready(state, name)
    parent = parent_side(ctx, state, ws)
    parent_branch = _check_preconditions(ctx, state, ws, parent, keep=keep)
    warnings = _collision_warnings(ctx, state, name)
    before = ctx.repo.head_of(parent.path)
    assert before and ws.branch
    snapshot: DbBranch | None = None
    try:
        _git_merge(ctx, ws, parent, parent_branch)
        if ctx.config.migrate:
            snapshot = ctx.backend(state).snapshot(parent.db)
            _migrate(ctx, parent)
    except BaseException:
        with _no_interrupts():
            _rollback(ctx, parent, before, snapshot)
        raise
    if snapshot is not None:
        _quietly(lambda: ctx.backend(state).drop_snapshot(snapshot), warnings)
    after = ctx.repo.head_of(parent.path) or before
    removed = False
    if not keep:
        inside = ctx.repo.toplevel.resolve() == Path(ws.path).resolve()
        # run from inside the workspace: its git calls must not run in the worktree being removed
        remove.remove(Context.open(ctx.repo.main_root) if inside else ctx, name)
        removed = True
    return MergeResult(
        name, parent.name, parent_branch, before, after, bool(ctx.config.migrate), removed, warnings=warnings
    )


def _check_preconditions(ctx: Context, state: State, ws: Workspace, parent: Side, *, keep: bool) -> str:
    branch = ctx.repo.current_branch(parent.path)
    if branch is None:
        raise FatalError(
            f"the parent worktree {parent.path} is not on a branch (detached HEAD)",
            hint=f"check out the branch to merge into there (git -C {parent.path} switch main)",
        )
    if branch == ws.branch:
        raise FatalError(f"{parent.path} has {branch} checked out itself", hint="check out the parent's branch there")
    if ctx.repo.is_dirty(parent.path):
        raise FatalError(
            f"the parent worktree {parent.path} has uncommitted changes; nothing was merged",
            hint=f"commit or stash them there (git -C {parent.path} stash), then retry",
        )
    if Path(ws.path).is_dir() and ctx.repo.is_dirty(Path(ws.path)):
        raise FatalError(
            f"workspace {ws.name!r} has uncommitted changes; a merge takes commits only",
            hint=f"commit them in {ws.path} (or `treefork run {ws.name} -- git commit -am ...`), then retry",
        )
    if ctx.config.migrate:
        for method in ("snapshot", "restore", "drop_snapshot"):
            expect_method(ctx.backend(state), method)
    children = sorted(w.name for w in state.workspaces.values() if w.parent == ws.name)
    if children and not keep and getattr(ctx.backend(state), "leaf_delete_only", False):
        raise FatalError(
            f"workspace {ws.name!r} has child workspaces ({', '.join(children)}) and could not be removed after the merge",
            hint=f"remove them first, or `treefork merge {ws.name} --keep`",
        )
    return branch


def _collision_warnings(ctx: Context, state: State, name: str) -> list[str]:
    from treefork.workspace import collisions, diffs, reconcile

    try:
        found = collisions.all_of(ctx, state, diffs.diff_all(ctx, state), reconcile.listed_worktrees(ctx))
    except FatalError as e:
        return [f"could not compare with the other workspaces: {e.message}"]
    warnings = [c.warning_for(name) for c in found if c.involves(name)]
    for w in warnings:
        output.warn(w)
    return warnings


def _git_merge(ctx: Context, ws: Workspace, parent: Side, parent_branch: str) -> None:
    output.info(f"merging {ws.branch} into {parent_branch} in {parent.path}")
    r = git("merge", "--no-edit", f"refs/heads/{ws.branch}", cwd=parent.path, check=False)
    if r.rc == 0:
        return
    conflicts = git("diff", "--name-only", "--diff-filter=U", cwd=parent.path, check=False).out.split()
    if conflicts:
        raise FatalError(
            f"merging {ws.branch} into {parent_branch} conflicts in {', '.join(conflicts)}; nothing was changed",
            hint=f"merge {parent_branch} into the workspace and resolve there (treefork run {ws.name} -- git merge {parent_branch}), then retry",
        )
    detail = (r.err.strip() or r.out.strip()).splitlines()
    raise FatalError(
        f"git merge failed: {detail[-1] if detail else 'exit ' + str(r.rc)}; nothing was changed",
        hint="see the message; retry",
    )


def _migrate(ctx: Context, parent: Side) -> None:
    command = ctx.config.migrate
    env = env_of(ctx, parent.path)
    conn = ctx.backend().connection(parent.db)
    env.update(getattr(conn, "extra_env", None) or {})  # e.g. Neon's DATABASE_URL_UNPOOLED, for migrations
    # the parent's database, whatever its env file says, in the app's spelling (an asyncpg app's migration
    # needs its `postgresql+asyncpg://`)
    notes = dbsettings.Notes()
    env[ctx.config.url_var] = dbsettings.retarget(env.get(ctx.config.url_var), conn.url, var="", notes=notes)
    if ctx.config.direct_url_var:
        direct = conn.direct_url or conn.url
        env[ctx.config.direct_url_var] = dbsettings.retarget(
            env.get(ctx.config.direct_url_var), direct, var="", notes=notes
        )
    output.info(f"migrate: {' '.join(command)} (in {parent.path}, against {parent.db.name})")
    rc = proc.run_attached(*command, cwd=parent.path, env=env)
    if rc != 0:
        raise FatalError(
            f"the migration `{' '.join(command)}` failed with exit code {rc}; code and data were put back",
            hint="fix the migration in the workspace, commit, then retry `treefork merge`",
        )


def _rollback(ctx: Context, parent: Side, before: str, snapshot: DbBranch | None) -> None:
    output.info(f"rolling back: {parent.path} to {before[:12]}" + (", database from its snapshot" if snapshot else ""))
    git("reset", "--hard", "-q", before, cwd=parent.path)
    if snapshot is not None:
        ctx.backend().restore(parent.db, snapshot=snapshot)


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _quietly(step: Callable[[], None], warnings: list[str]) -> None:
    try:
        step()
    except FatalError as e:
        warnings.append(str(e))
        output.warn(str(e))
