"""`treefork merge NAME`, all or nothing: git merge into the parent's branch in the parent's worktree, the
`migrate` command first on a fresh fork of the parent's database and then on the parent's own, then removal
as `rm` does.

Before anything changes, the parent's worktree must be clean and the merge is recorded in the registry
(merge_recovery.py). A migration that fails on the fork never touches the parent: its clients keep their
connections and the code is put back. Only a migration that passed on the fork and then fails on the parent
itself (rare: the parent's data changed meanwhile) restores the parent from the snapshot taken just before,
saying first what that costs. ^C, SIGTERM and SIGHUP roll back the same way, and the rollback ignores further
ones; after a kill -9 the recorded intent lets the next `merge`, `merge --abort` or `doctor --fix` finish.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

from treefork import dbsettings, debug, interrupts, output, proc, shapes
from treefork.backends.base import CreateOptions, DbBranch
from treefork.background import Background
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import git
from treefork.state import State, Workspace
from treefork.workspace import merge_recovery as recovery
from treefork.workspace.lifecycle import Side, env_of, expect_ready, parent_side
from treefork.workspace.merge_recovery import MergeIntent


@dataclass
class MergeResult:
    name: str
    parent: str  # the parent workspace ("root" for the main worktree)
    parent_branch: str
    head_before: str
    head_after: str
    migrated: bool
    removed: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return shapes.record("merge", vars(self))


def merge(ctx: Context, name: str, *, keep: bool) -> MergeResult:
    state = ctx.state()
    state.expect_initialized()
    interrupted = recovery.pending_or_none(state, name)
    if interrupted is not None:
        if recovery.recover(ctx, interrupted, abort=False) == recovery.COMPLETED:
            return _result(ctx, interrupted, migrated=True, removed=not interrupted.keep, warnings=[])
        state = ctx.state()  # as the undone merge left it
    ws = expect_ready(state, name)
    parent = parent_side(ctx, state, ws)
    parent_branch = _check_preconditions(ctx, state, ws, parent, keep=keep)
    before = ctx.repo.head_of(parent.path)
    assert before and ws.branch
    intent = recovery.begin(ctx, ws, parent, parent_branch, before, keep=keep)
    trial: Background[DbBranch] | None = None
    with interrupts.like_interrupts():
        try:
            if ctx.config.migrate:  # the fork is made while the collisions are looked for and git merges
                trial = _fork_for_the_trial(ctx, intent, parent)
            warnings = _collision_warnings(ctx, state, name)
            _git_merge(ctx, ws, parent, parent_branch)
            debug.crash_point("merge:after-git")
            if trial is not None:
                _migrate_on_a_fork(ctx, intent, parent, trial.result())
                _snapshot(ctx, intent, parent)
                _migrate_parent(ctx, intent, parent)
        except BaseException:
            with interrupts.ignored():
                if trial is not None:
                    with contextlib.suppress(BaseException):
                        trial.result()  # made (or failed) before the rollback drops it
                output.info(f"rolling back: {parent.path} to {before[:12]}")
                recovery.undo(ctx, intent)
            raise
    warnings += recovery.complete(ctx, intent, state=state)
    return _result(ctx, intent, migrated=bool(ctx.config.migrate), removed=not keep, warnings=warnings)


def abort(ctx: Context, name: str) -> str:
    """`merge --abort NAME`: undo an interrupted merge (or complete one whose snapshot is already gone)."""
    state = ctx.state()
    state.expect_initialized()
    intent = recovery.pending_or_none(state, name)
    if intent is None:
        raise FatalError(
            f"no unfinished merge of {name!r}", hint="nothing to abort; `treefork ls` shows the workspaces"
        )
    with interrupts.like_interrupts():
        return recovery.recover(ctx, intent, abort=True)


def _result(ctx: Context, intent: MergeIntent, *, migrated: bool, removed: bool, warnings: list[str]) -> MergeResult:
    after = ctx.repo.head_of(Path(intent.parent_path)) or intent.head_before
    return MergeResult(
        intent.workspace,
        intent.parent,
        intent.parent_branch,
        intent.head_before,
        after,
        migrated,
        removed,
        warnings=warnings,
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
    children = sorted(w.name for w in state.workspaces.values() if w.parent == ws.name)
    if children and not keep and ctx.backend(state).leaf_delete_only:
        raise FatalError(
            f"workspace {ws.name!r} has child workspaces ({', '.join(children)}) and could not be removed after the merge",
            hint=f"remove them first, or `treefork merge {ws.name} --keep`",
        )
    return branch


def _collision_warnings(ctx: Context, state: State, name: str) -> list[str]:
    from treefork.workspace import collisions, reconcile

    try:
        found = collisions.involving(ctx, state, name, reconcile.listed_worktrees(ctx))
    except FatalError as e:
        return [f"could not compare with the other workspaces: {e.message}"]
    warnings = [c.warning_for(name) for c in found]
    for w in warnings:
        output.warn(output.printable(w))  # object names come from the databases: agents chose them
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


def _fork_for_the_trial(ctx: Context, intent: MergeIntent, parent: Side) -> Background[DbBranch]:
    """A fresh fork of the parent's database (made online: the parent's clients never notice), made in a thread.
    Recorded first, so a kill leaves a fork the recovery finds by name."""
    recovery.advance(ctx, intent, recovery.TRIAL)
    backend = ctx.backend()
    output.info(f"forking {parent.name}'s database to try the migration on first")
    return Background(
        lambda: backend.create_branch(intent.trial_name, parent=parent.db, options=CreateOptions()), name="trial-fork"
    )


def _migrate_on_a_fork(ctx: Context, intent: MergeIntent, parent: Side, trial: DbBranch) -> None:
    """The migration on the trial fork, which is then dropped: a failure there never touched the parent."""
    debug.crash_point("merge:after-fork")
    output.info(f"trying the migration on the fork of {parent.name}'s database first")
    rc, refused = _run_migrate(ctx, parent, trial)
    debug.crash_point("merge:after-fork-migrate")
    ctx.backend().delete_branch(trial)
    if rc != 0:
        raise FatalError(
            f"the migration `{' '.join(ctx.config.migrate)}` failed with exit code {rc} on a fork of "
            f"{parent.name}'s database; {parent.name}'s database was never touched and its code was put back",
            hint=f"{refused}; then retry `treefork merge`"
            if refused
            else "fix the migration in the workspace, commit, then retry `treefork merge`",
        )
    debug.crash_point("merge:after-fork-drop")


def _snapshot(ctx: Context, intent: MergeIntent, parent: Side) -> None:
    """The parent's snapshot, for the rare migration that passes on the fork and fails on the parent."""
    recovery.advance(ctx, intent, recovery.SNAPSHOT)
    backend = ctx.backend()
    snap = backend.snapshot(parent.db, tag=intent.tag)
    intent.snapshot = asdict(snap)
    intent.writes_at_snapshot = backend.writes_so_far(parent.db)
    recovery.advance(ctx, intent, recovery.MIGRATING)
    debug.crash_point("merge:after-snapshot")


def _migrate_parent(ctx: Context, intent: MergeIntent, parent: Side) -> None:
    rc, _ = _run_migrate(ctx, parent, parent.db)  # it passed on the fork: no refusal of the role's to name
    debug.crash_point("merge:after-migrate")
    if rc != 0:
        raise FatalError(
            f"the migration `{' '.join(ctx.config.migrate)}` passed on a fork of {parent.name}'s database but "
            f"failed with exit code {rc} on {parent.name}'s own; code and data were put back",
            hint=f"{parent.name}'s data differs from the fork's now: fix the migration in the workspace, commit, then retry `treefork merge`",
        )
    recovery.advance(ctx, intent, recovery.MIGRATED)
    debug.crash_point("merge:after-migrated")


def _run_migrate(ctx: Context, parent: Side, db: DbBranch) -> tuple[int, str | None]:
    """The migrate command in the parent's worktree (the merged code) with its env file, against db; its exit
    code, and for a failure treefork's fix of what the server refused, if it can name one (Backend.watch: a
    `CREATE EXTENSION` the role may not run). A migration ended by SIGTERM or SIGHUP (passed on from treefork's
    own) is an interruption."""
    command = ctx.config.migrate
    env = env_of(ctx, parent.path)
    conn = ctx.backend().connection(db)
    env.update(conn.extra_env)  # e.g. Neon's DATABASE_URL_UNPOOLED, for migrations
    # the database, whatever the env file says, in the app's spelling (an asyncpg app's migration needs its
    # `postgresql+asyncpg://`)
    notes = dbsettings.Notes()
    env[ctx.config.url_var] = dbsettings.retarget(env.get(ctx.config.url_var), conn.url, var="", notes=notes)
    if ctx.config.direct_url_var:
        direct = conn.direct_url or conn.url
        env[ctx.config.direct_url_var] = dbsettings.retarget(
            env.get(ctx.config.direct_url_var), direct, var="", notes=notes
        )
    output.info(f"migrate: {' '.join(command)} (in {parent.path}, against {db.name})")
    refused = ctx.backend().watch(db)
    rc = proc.run_attached(*command, cwd=parent.path, env=env)
    if -rc in (signal.SIGTERM, signal.SIGHUP):
        raise interrupts.Stopped(-rc)
    return rc, (output.printable(found) if rc != 0 and (found := refused()) else None)
