"""Creating a workspace: its worktree, branch, database branch and env file, from git, the backend and the registry.

Every mutation records its intent in the registry before acting and marks it done after, so a re-run of
the same command (or `treefork gc`) can finish or undo what a crash left.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from treefork import debug, output, platform, proc
from treefork.backends.base import CreateOptions, DbBranch
from treefork.background import Background
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import Worktree, has_control_chars
from treefork.names import WorkspaceName
from treefork.state import CREATING, READY, REMOVING, UNPROVISIONED, State, Workspace
from treefork.workspace import forkpoint
from treefork.workspace.remove import RESERVED, drop_db

T = TypeVar("T")


@dataclass(frozen=True)
class NewRequest:
    name: WorkspaceName
    parent: str | None = None  # a workspace name; None = the root
    branch: str | None = None  # default: the workspace name
    path: Path | None = None  # default: from config.worktree_dir
    options: CreateOptions = CreateOptions()
    origin: str = "new"  # one of state.ORIGINS
    adopt_worktree: bool = False  # the worktree already exists (git hook): never remove it on failure
    base: str | None = None  # a new branch's start (`new --base`); default: the parent worktree's HEAD


def parent_db(ctx: Context, state: State, parent: str | None) -> DbBranch:
    backend = ctx.backend(state)
    if parent is None:
        return backend.root()
    ws = state.expect_workspace(parent)
    db = ws.db_ref_or_none()
    if ws.status != READY or db is None:
        raise FatalError(f"workspace {parent!r} is not ready ({ws.status})", hint=ws.next_step())
    return db


def create(ctx: Context, req: NewRequest, *, state: State | None = None) -> Workspace:
    """state: the caller's own reading of the registry, if it has one (a command reads it once); every change
    is made under the lock, on the registry as it is then."""
    if req.name in RESERVED:
        raise FatalError(f"{req.name!r} is reserved for the root workspace", hint="pick another name")
    _expect_unambiguous(ctx, req)
    state = ctx.state() if state is None else state
    state.expect_initialized()
    existing = state.workspaces.get(req.name)
    if existing is not None and not Path(existing.path).exists():
        from treefork.workspace import reconcile

        reconcile.follow_moves(ctx)  # `git worktree move` behind treefork's back: finish it where it is now
        state = ctx.state()
    debug.mark("new:begin")
    ctx.backend(state).prepare()  # e.g. connect to PostgreSQL while the intent is recorded
    ws = _record_intent(ctx, req)
    was_ready = ws.status == READY
    created = {"worktree": False, "branch": False, "db": False}
    recording: Background[None] | None = None
    try:
        parent = parent_db(ctx, state, req.parent)
        parent_path = Path(state.workspaces[req.parent].path) if req.parent else ctx.repo.main_root
        data_base = None if was_ready else _head_or_none(ctx, parent_path)
        db = _alongside(
            lambda: _checkout(ctx, ws, req, created, parent_path), lambda: _ensure_db(ctx, ws, req, parent, created)
        )
        debug.crash_point("new:after-db")
        if not was_ready:  # its schema as forked, what `diff` compares with (before setup may migrate it)
            recording = forkpoint.recording(ctx, ws.name, db)
            debug.mark("new:fork-point-started")
        from treefork.workspace import envbuild

        conn = ctx.backend().connection(db)  # a new cluster's role admitted meanwhile (clusters.py)
        code_base = None if was_ready else _head_or_none(ctx, Path(ws.path))
        with ctx.registry.transaction() as st:  # the env file, and where the code and the data start
            envbuild.write_worktree_env(ctx.repo, ctx.config, Path(ws.path), conn, excluded=True, workspace=ws.name)
            if not was_ready:
                _record_bases(st.workspaces[ws.name], ws, code_base=code_base, data_base=data_base)
        debug.crash_point("new:after-env")
        envbuild.copy_extra_files(ctx.repo, ctx.config, Path(ws.path))
        if not was_ready:
            debug.mark("new:bases-recorded")
            _warn_if_data_ahead(ctx, ws)
        if recording is not None:  # before setup, which may migrate what it dumps
            recording.result()
            debug.mark("new:fork-point-recorded")
    except BaseException as e:
        if recording is not None:
            with contextlib.suppress(BaseException):
                recording.result()  # before the rollback drops what it dumps
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


def _expect_unambiguous(ctx: Context, req: NewRequest) -> None:
    """A path git's porcelain output could be confused by, and a branch name that a remote-tracking branch
    would shadow (`origin/main` is both refs/heads/origin/main and refs/remotes/origin/main)."""
    if req.path is not None and has_control_chars(str(req.path)):
        raise FatalError(f"the path {str(req.path)!r} contains a control character", hint="choose a plain path")
    if req.path is not None and not req.adopt_worktree:
        _expect_not_nested(ctx, req.path.absolute())
    slashed = [what for what in {str(req.name), req.branch or str(req.name)} if "/" in what]
    remotes = ctx.repo.remotes() if slashed else []  # one `git remote` for both names
    for what in slashed:
        first = what.split("/", 1)[0]
        if first in remotes:
            raise FatalError(
                f"{what!r} is ambiguous: {first!r} is a remote, so git would mix it up with the remote-tracking branch {what}",
                hint=f"pick a name that does not start with '{first}/'",
            )


def _expect_not_nested(ctx: Context, path: Path) -> None:
    """A worktree inside another linked worktree (or around one) would go with it: `rm outer --force` would
    delete the inner one's files. Only the main worktree may hold others (`.claude/worktrees/...`)."""
    from treefork.workspace import reconcile

    here = path.resolve()
    main = ctx.repo.main_root.resolve()
    for tree_path in reconcile.listed_worktrees(ctx):
        if tree_path == main or tree_path == here:
            continue
        if tree_path in here.parents or here in tree_path.parents:
            inside = tree_path in here.parents
            raise FatalError(
                f"{path} lies {'inside the worktree' if inside else 'around the worktree'} {tree_path}; "
                "removing one would delete the other's files",
                hint="choose a --path outside every other worktree (the default, ../<repo>.worktrees/NAME, is)",
            )


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
                f"workspace {other.name!r} already uses {path if Path(other.path) == path else f'branch {branch}'}",
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
            pid_started=platform.process_start_time(os.getpid()),
        )
        st.workspaces[ws.name] = ws
        return ws


def _resume(ws: Workspace, req: NewRequest, branch: str | None, path: Path) -> Workspace:
    _expect_same_request(ws, req, branch, path)
    if ws.status == READY and Path(ws.path).exists():
        return ws  # idempotent: the steps below find everything done
    if ws.status == REMOVING:
        raise FatalError(
            f"workspace {ws.name!r} is being removed", hint=f"finish with `treefork rm {ws.name}`, then create it again"
        )
    if ws.in_progress_elsewhere():
        raise FatalError(f"workspace {ws.name!r} is being created by process {ws.pid}", hint="wait for it to finish")
    ws.pid, ws.pid_started = os.getpid(), platform.process_start_time(os.getpid())
    return ws


def _expect_same_request(ws: Workspace, req: NewRequest, branch: str | None, path: Path) -> None:
    """A re-run finishes the workspace as it was asked for the first time; options that say otherwise are
    refused rather than ignored."""
    if req.origin != "new":
        return
    clashes = []
    if req.parent is not None and req.parent != ws.parent:
        clashes.append(f"--from {req.parent} (it was forked from {ws.parent or 'root'})")
    if req.branch is not None and branch != ws.branch:
        clashes.append(f"--branch {branch} (it uses branch {ws.branch})")
    if req.path is not None and path.resolve() != Path(ws.path).resolve():
        clashes.append(f"--path {path} (it lives at {ws.path})")
    if clashes:
        raise FatalError(
            f"workspace {ws.name!r} already exists; these options contradict it: {'; '.join(clashes)}",
            hint=f"drop those options, or `treefork rm {ws.name}` first, or pick another name",
        )


def _check_path_free(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FatalError(f"{path} already exists", hint="remove it, or choose another name or --path")


def _checkout(ctx: Context, ws: Workspace, req: NewRequest, created: dict[str, bool], parent_path: Path) -> None:
    """The worktree, with its env file kept out of git before the file exists. Runs while the database
    clones, so the env-file modules (python-dotenv...) are loaded here too."""
    _ensure_worktree(ctx, ws, req, created, parent_path)
    from treefork.workspace import envbuild

    envbuild.exclude_from_git(ctx.repo, Path(ws.path), ctx.config.env_file)


def _ensure_worktree(ctx: Context, ws: Workspace, req: NewRequest, created: dict[str, bool], parent_path: Path) -> None:
    from treefork.workspace import reconcile

    path = Path(ws.path)
    with ctx.registry.git_lock():
        listed = reconcile.listed_worktrees(ctx)
        tree = listed.get(path.resolve())
        if tree is not None:
            _expect_own_worktree(ws, tree)
            _record_worktree_id(ctx, ws.name, tree.admin_id)
            return
        if req.adopt_worktree:
            raise FatalError(
                f"{path} is not a git worktree of this repository", hint="create it with `git worktree add`"
            )
        assert ws.branch
        base = None if ctx.repo.branch_exists(ws.branch) else _start_of(ctx, req, listed, parent_path)
        ctx.repo.add_worktree(path, ws.branch, create_from=base)
        created["worktree"], created["branch"] = True, base is not None
    with ctx.registry.transaction() as st:
        st.workspaces[ws.name].created_worktree = True
        st.workspaces[ws.name].created_branch = base is not None
        st.workspaces[ws.name].worktree_id = ctx.repo.admin_id_or_none(path)
    debug.crash_point("new:after-worktree")


def _expect_own_worktree(ws: Workspace, tree: Worktree) -> None:
    """The worktree at the workspace's path is its own: on its branch (or detached under its admin id)."""
    if tree.branch == ws.branch or (tree.branch is None and ws.worktree_id and tree.admin_id == ws.worktree_id):
        return
    raise FatalError(
        f"the worktree at {tree.path} is on {'branch ' + tree.branch if tree.branch else 'a detached HEAD'}, "
        f"not on workspace {ws.name!r}'s branch {ws.branch}",
        hint=f"`treefork rm {ws.name}` forgets the workspace (that worktree is kept), or switch it back: git -C {tree.path} switch {ws.branch}",
    )


def _record_worktree_id(ctx: Context, name: str, admin_id: str | None) -> None:
    with ctx.registry.transaction() as st:
        rec = st.workspaces.get(name)
        if rec is not None and rec.worktree_id != admin_id:
            rec.worktree_id = admin_id


def _start_of(ctx: Context, req: NewRequest, listed: dict[Path, Worktree], where: Path) -> str:
    """The commit a new branch starts from: --base, else the parent worktree's HEAD, the code of the data
    its database is forked from, as the listing just read under the git lock shows it (no second
    `rev-parse HEAD`)."""
    if req.base is not None:
        commit = ctx.repo.rev(req.base)
        if commit is None:
            raise FatalError(f"--base {req.base}: no such commit", hint="name a branch, tag or commit (git log)")
        return commit
    head = ctx.repo.head_in(where, listed)
    if head is None:
        raise FatalError(f"the parent worktree {where} has no commit to branch from", hint="make a first commit there")
    return head


def _head_or_none(ctx: Context, path: Path) -> str | None:
    return ctx.repo.head_of(path) if path.is_dir() else None


def _record_bases(rec: Workspace, ws: Workspace, *, code_base: str | None, data_base: str | None) -> None:
    """Where the code and the data start, in the registry's record and in ws: the worktree's first HEAD, and
    the parent's HEAD when its database was forked."""
    rec.code_base, rec.data_base = code_base, data_base
    ws.code_base, ws.data_base = code_base, data_base


def _warn_if_data_ahead(ctx: Context, ws: Workspace) -> None:
    """When the data has commits the code lacks (a migration the code does not know), say so."""
    code_base, data_base = ws.code_base, ws.data_base
    if code_base and data_base and data_ahead_of_code(ctx, data_base, code=code_base):
        output.warn(
            f"workspace {ws.name}: its code starts at {code_base[:12]}, but its database was forked from "
            f"{ws.parent or 'root'}'s, whose code is at {data_base[:12]}, which this code lacks: the data is "
            f"ahead of the code (a migration it does not know). Bring the code up: git -C {ws.path} merge {data_base[:12]}"
        )


def data_ahead_of_code(ctx: Context, data_base: str, *, code: str) -> bool:
    """The code the data was forked with (data_base) is not in code (a commit): the database may hold a
    migration that code does not know."""
    return code != data_base and not ctx.repo.is_ancestor(data_base, of=code)


def _ensure_db(ctx: Context, ws: Workspace, req: NewRequest, parent: DbBranch, created: dict[str, bool]) -> DbBranch:
    backend = ctx.backend()
    if ws.status == READY and ws.db_branch:
        return _recorded_db(ctx, ws)
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


def _recorded_db(ctx: Context, ws: Workspace) -> DbBranch:
    """A ready workspace's database, as the registry records it. Never looked up by a path that could drop
    or re-fork it: if the backend does not list it as ours, the re-run stops and says so."""
    recorded = ws.db_ref_or_none()
    assert recorded is not None
    if any(db.id == recorded.id or db.name == recorded.name for db in ctx.backend().list_branches()):
        return recorded
    raise FatalError(
        f"workspace {ws.name!r} is ready but the backend does not list its database {ws.db_branch} as treefork's "
        "(missing, or its treefork mark is gone); treefork will not replace it",
        hint=f"check it with `treefork doctor`; if it is really lost, `treefork rm {ws.name}` then `treefork new {ws.name}`",
    )


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
            _quietly(lambda: drop_db(ctx, ws))
        from treefork.workspace import envbuild

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
    _quietly(lambda: drop_db(ctx, ws))
    if exists and made_by_us:
        with ctx.registry.git_lock():
            _quietly(lambda: ctx.repo.remove_worktree(path, force=True))
            if (created["branch"] or ws.created_branch) and (branch := ws.branch):
                _quietly(lambda: ctx.repo.delete_branch(branch))
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
    from treefork.workspace import envbuild

    env = {**os.environ, **envbuild.load_env(ctx.config.env_path(ws.path))}
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


def _quietly(step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as e:  # rollback must go on; report what could not be undone
        output.warn(f"cleanup step failed: {e}")
