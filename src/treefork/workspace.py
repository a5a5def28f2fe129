"""The use cases: create and remove a workspace, composed from git, the backend, env files and the registry.

Every mutation records its intent in the registry before acting and marks it done after, so a re-run of
the same command (or `treefork gc`) can finish or undo what a crash left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from treefork import debug, output, proc
from treefork.background import Background
from treefork.backends.base import CreateOptions, DbBranch
from treefork.context import Context
from treefork.errors import FatalError
from treefork.names import WorkspaceName
from treefork.state import CREATING, READY, REMOVING, UNPROVISIONED, State, Workspace, pid_alive

T = TypeVar("T")

RESERVED = {"root"}


@dataclass(frozen=True)
class NewRequest:
    name: WorkspaceName
    parent: str | None = None  # a workspace name; None = the root
    branch: str | None = None  # default: the workspace name
    path: Path | None = None  # default: from config.worktree_dir
    options: CreateOptions = CreateOptions()
    origin: str = "new"  # new | post-checkout | claude
    adopt_worktree: bool = False  # the worktree already exists (git hook): never remove it on failure


def parent_db(ctx: Context, state: State, parent: str | None) -> DbBranch:
    backend = ctx.backend(state)
    if parent is None:
        return backend.root()
    ws = state.expect_workspace(parent)
    if ws.status != READY or not ws.db_branch:
        raise FatalError(
            f"workspace {parent!r} is not ready ({ws.status})", hint=f"finish it with `treefork new {parent}` first"
        )
    return DbBranch(name=ws.db_branch, id=ws.db_id or ws.db_branch, workspace=parent, clone_method=ws.clone_method)


def create(ctx: Context, req: NewRequest) -> Workspace:
    if req.name in RESERVED:
        raise FatalError(f"{req.name!r} is reserved for the root workspace", hint="pick another name")
    state = ctx.state()
    state.expect_initialized()
    ctx.backend().prepare()  # e.g. connect to PostgreSQL while the intent is recorded
    ws = _record_intent(ctx, req)
    was_ready = ws.status == READY
    created = {"worktree": False, "branch": False, "db": False}
    try:
        parent = parent_db(ctx, state, req.parent)
        db = _alongside(lambda: _checkout(ctx, ws, req, created), lambda: _ensure_db(ctx, ws, req, parent, created))
        debug.crash_point("new:after-db")
        from treefork import envbuild

        conn = ctx.backend().connection(db)
        with ctx.registry.transaction():
            envbuild.write_worktree_env(ctx.repo, ctx.config, Path(ws.path), conn, excluded=True)
        debug.crash_point("new:after-env")
        envbuild.copy_extra_files(ctx.repo, ctx.config, Path(ws.path))
    except BaseException as e:
        if not was_ready:  # a failed re-run of a finished workspace must not tear it (and its data) down
            _undo_create(ctx, ws, req, created, e)
        raise
    if not was_ready:
        _run_setup(ctx, ws)
    with ctx.registry.transaction() as st:
        final = st.workspaces[ws.name]
        final.status, final.pid, final.error = READY, None, None
    debug.crash_point("new:after-registry")
    return final


def _record_intent(ctx: Context, req: NewRequest) -> Workspace:
    branch = req.branch or (None if req.adopt_worktree else str(req.name))  # adopted detached: no branch
    path = (req.path or ctx.config.worktree_path(ctx.repo.main_root, req.name.dir_name)).absolute()
    with ctx.registry.transaction() as st:
        ws = st.workspaces.get(req.name)
        if ws is not None:
            return _resume(ws, req, branch, path)
        other = st.workspace_by_path_or_none(path) or (branch and st.workspace_by_branch_or_none(branch)) or None
        if other is not None:
            raise FatalError(
                f"workspace {other.name!r} already uses {path if Path(other.path) == path else 'branch ' + branch}",
                hint=f"pick another name, or `treefork rm {other.name}`",
            )
        if req.parent is not None and req.parent not in st.workspaces:
            raise FatalError(f"no workspace named {req.parent!r} to fork from", hint="`treefork ls` lists them")
        if not req.adopt_worktree:
            _check_path_free(path)
            if not ctx.repo.has_commits():
                raise FatalError(
                    "this repository has no commits yet",
                    hint="make a first commit (git commit --allow-empty -m init), then retry",
                )
        ws = Workspace(
            name=str(req.name),
            branch=branch,
            path=str(path),
            parent=req.parent,
            status=CREATING,
            origin=req.origin,
            pid=os.getpid(),
        )
        st.workspaces[ws.name] = ws
        return ws


def _resume(ws: Workspace, req: NewRequest, branch: str | None, path: Path) -> Workspace:
    if ws.status == READY and Path(ws.path).exists():
        return ws  # idempotent: the steps below find everything done
    if ws.status == REMOVING:
        raise FatalError(
            f"workspace {ws.name!r} is being removed", hint=f"finish with `treefork rm {ws.name}`, then create it again"
        )
    if ws.pid and ws.pid != os.getpid() and pid_alive(ws.pid) and ws.status == CREATING:
        raise FatalError(f"workspace {ws.name!r} is being created by process {ws.pid}", hint="wait for it to finish")
    if req.parent != ws.parent and req.origin == "new" and req.parent is not None:
        raise FatalError(
            f"workspace {ws.name!r} exists with parent {ws.parent or 'root'}",
            hint=f"`treefork rm {ws.name}` first to fork it from {req.parent}",
        )
    ws.pid = os.getpid()
    return ws


def _check_path_free(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FatalError(f"{path} already exists", hint="remove it, or choose another name or --path")


def _checkout(ctx: Context, ws: Workspace, req: NewRequest, created: dict[str, bool]) -> None:
    """The worktree, with its env file kept out of git before the file exists. Runs while the database
    clones, so the env-file modules (python-dotenv...) are loaded here too."""
    _ensure_worktree(ctx, ws, req, created)
    from treefork import envbuild

    envbuild.exclude_from_git(ctx.repo, Path(ws.path), ctx.config.env_file)


def _ensure_worktree(ctx: Context, ws: Workspace, req: NewRequest, created: dict[str, bool]) -> None:
    path = Path(ws.path)
    with ctx.registry.git_lock():
        listed = {w.path.resolve(): w for w in ctx.repo.worktrees()}
        if path.resolve() in listed:
            return
        if req.adopt_worktree:
            raise FatalError(
                f"{path} is not a git worktree of this repository", hint="create it with `git worktree add`"
            )
        assert ws.branch
        base = None if ctx.repo.branch_exists(ws.branch) else _parent_head(ctx, req.parent)
        ctx.repo.add_worktree(path, ws.branch, create_from=base)
        created["worktree"], created["branch"] = True, base is not None
    with ctx.registry.transaction() as st:
        st.workspaces[ws.name].created_worktree = True
        st.workspaces[ws.name].created_branch = base is not None
    debug.crash_point("new:after-worktree")


def _parent_head(ctx: Context, parent: str | None) -> str:
    state = ctx.state()
    where = Path(state.workspaces[parent].path) if parent else ctx.repo.main_root
    head = ctx.repo.head_of(where)
    if head is None:
        raise FatalError(f"the parent worktree {where} has no commit to branch from", hint="make a first commit there")
    return head


def _ensure_db(ctx: Context, ws: Workspace, req: NewRequest, parent: DbBranch, created: dict[str, bool]) -> DbBranch:
    backend = ctx.backend()
    db = backend.find_branch_or_none(ws.name)
    if db is None:
        output.info(f"forking database {parent.name} -> {ws.name}")
        db = backend.create_branch(
            ws.name,
            parent=parent,
            options=CreateOptions(
                terminate_blockers=req.options.terminate_blockers,
                ttl_seconds=req.options.ttl_seconds,
                git_branch=ws.branch,
            ),
        )
        created["db"] = True
    with ctx.registry.transaction() as st:
        rec = st.workspaces[ws.name]
        rec.db_branch, rec.db_id, rec.clone_method = db.name, db.id, db.clone_method
    ws.db_branch, ws.db_id, ws.clone_method = db.name, db.id, db.clone_method
    return db


def _alongside(checkout: Callable[[], None], clone: Callable[[], T]) -> T:
    """Run the checkout (git worktree add) in a thread while the database is cloned here: the two are
    independent, so `new` takes about as long as the slower one. Waits for both before returning or
    raising, so a rollback never races git; when both fail, the checkout's error is the one raised."""
    checking_out = Background(checkout, name="checkout")
    try:
        return clone()
    finally:
        checking_out.result()


def _undo_create(ctx: Context, ws: Workspace, req: NewRequest, created: dict[str, bool], error: BaseException) -> None:
    """Leave nothing half-made. A worktree that git made (the hooks) stays, marked unprovisioned and
    pointing at no one else's database; one that treefork made is removed with its database."""
    if req.adopt_worktree:
        if created["db"]:
            _quietly(lambda: _drop_db(ctx, ws))
        from treefork import envbuild

        _quietly(lambda: envbuild.write_worktree_env(ctx.repo, ctx.config, Path(ws.path), None))
        with ctx.registry.transaction() as st:
            rec = st.workspaces.get(ws.name)
            if rec:
                rec.status, rec.pid, rec.db_branch, rec.db_id = UNPROVISIONED, None, None, None
                rec.error = str(error) or type(error).__name__
        return
    path = Path(ws.path)
    exists = path.exists() and (path / ".git").exists()
    made_by_us = created["worktree"] or ws.created_worktree
    if exists and not (created["worktree"] or (made_by_us and not _quiet_dirty(ctx, path))):
        with ctx.registry.transaction() as st:
            rec = st.workspaces.get(ws.name)
            if rec:
                rec.pid, rec.error = None, str(error) or type(error).__name__
        return
    _quietly(lambda: _drop_db(ctx, ws))
    if exists and made_by_us:
        with ctx.registry.git_lock():
            _quietly(lambda: ctx.repo.remove_worktree(path, force=True))
            if (created["branch"] or ws.created_branch) and ws.branch:
                _quietly(lambda: ctx.repo.delete_branch(ws.branch))
    with ctx.registry.transaction() as st:
        st.workspaces.pop(ws.name, None)


def _quiet_dirty(ctx: Context, path: Path) -> bool:
    try:
        return ctx.repo.is_dirty(path)
    except Exception:
        return True


def _run_setup(ctx: Context, ws: Workspace) -> None:
    if not ctx.config.setup:
        return
    from treefork import envbuild

    env = {**os.environ, **envbuild.load_env(Path(ws.path) / ctx.config.env_file)}
    for command in ctx.config.setup:
        output.info(f"setup: {' '.join(command)}")
        rc = proc.run_visible(*command, cwd=ws.path, env=env)
        if rc != 0:
            with ctx.registry.transaction() as st:
                st.workspaces[ws.name].error = f"setup command failed: {' '.join(command)} (exit {rc})"
                st.workspaces[ws.name].pid = None
            raise FatalError(
                f"setup command `{' '.join(command)}` failed with exit code {rc} in {ws.path}",
                hint=f"fix it, then `treefork new {ws.name}` re-runs the setup (the worktree and database are kept)",
            )


def _quietly(step) -> None:
    try:
        step()
    except Exception as e:  # rollback must go on; report what could not be undone
        output.warn(f"cleanup step failed: {e}")


# ---- removal ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoveResult:
    name: str
    db_dropped: bool
    worktree_removed: bool
    branch_deleted: bool
    branch_kept_reason: str | None


def remove(ctx: Context, name: str, *, force: bool = False, delete_branch: bool = False) -> RemoveResult:
    state = ctx.state()
    state.expect_initialized()
    ws = state.expect_workspace(name)
    path = Path(ws.path)
    _check_children(ctx, state, ws)
    if path.exists() and (path / ".git").exists() and not force and ctx.repo.is_dirty(path):
        raise FatalError(
            f"worktree {path} has uncommitted changes",
            hint=f"commit or stash them, or `treefork rm {name} --force` to discard them",
        )
    with ctx.registry.transaction() as st:
        st.workspaces[name].status = REMOVING
    debug.crash_point("rm:after-intent")
    worktree_removed = _remove_worktree(ctx, ws, force=force)  # git's own dirty check is the last gate
    debug.crash_point("rm:after-worktree")
    db_dropped = _drop_db(ctx, ws)
    debug.crash_point("rm:after-db")
    deleted, reason = _maybe_delete_branch(ctx, state, ws, force_delete=delete_branch)
    with ctx.registry.transaction() as st:
        st.forget(name)
    return RemoveResult(name, db_dropped, worktree_removed, deleted, reason)


def _check_children(ctx: Context, state: State, ws: Workspace) -> None:
    children = sorted(w.name for w in state.workspaces.values() if w.parent == ws.name)
    if children and getattr(ctx.backend(state), "leaf_delete_only", False):
        raise FatalError(
            f"workspace {ws.name!r} has child workspaces: {', '.join(children)}",
            hint=f"remove them first (treefork rm {children[0]}); {ctx.backend(state).name} cannot delete a parent branch before its children",
        )


def _drop_db(ctx: Context, ws: Workspace) -> bool:
    if not ws.db_branch:
        db = ctx.backend().find_branch_or_none(ws.name)
        if db is None:
            return False
    else:
        db = DbBranch(name=ws.db_branch, id=ws.db_id or ws.db_branch, workspace=ws.name)
    ctx.backend().delete_branch(db)
    return True


def _remove_worktree(ctx: Context, ws: Workspace, *, force: bool) -> bool:
    path = Path(ws.path)
    with ctx.registry.git_lock():
        listed = {w.path.resolve() for w in ctx.repo.worktrees()}
        if path.resolve() not in listed:
            ctx.repo.prune_worktrees()
            return False
        # ignored files (our env file, build output) do not stop git; modified or untracked ones do
        ctx.repo.remove_worktree(path, force=force)
    return True


def _maybe_delete_branch(ctx: Context, state: State, ws: Workspace, *, force_delete: bool) -> tuple[bool, str | None]:
    branch = ws.branch
    if not branch or not ctx.repo.branch_exists(branch):
        return False, None
    if any(w.branch == branch for w in ctx.repo.worktrees()):
        return False, f"branch {branch} is checked out in another worktree"
    into = _parent_ref(ctx, state, ws)
    if force_delete or (into and ctx.repo.is_merged(branch, into=into)):
        with ctx.registry.git_lock():
            ctx.repo.delete_branch(branch)
        return True, None
    return False, f"branch {branch} is not merged into {into or 'its parent'}; kept (delete it with --delete-branch)"


def _parent_ref(ctx: Context, state: State, ws: Workspace) -> str | None:
    parent = state.workspaces.get(ws.parent) if ws.parent else None
    where = Path(parent.path) if parent else ctx.repo.main_root
    return ctx.repo.head_of(where) if where.exists() else None
