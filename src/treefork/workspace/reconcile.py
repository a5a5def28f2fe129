"""Reconciling the registry and the backend with git: what `ls` shows and what `gc` drops."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from treefork import output, shapes
from treefork.backends.base import DbBranch
from treefork.context import Context
from treefork.git import Worktree
from treefork.state import State, Workspace


@dataclass
class GcAction:
    workspace: str
    db_branch: str | None
    action: str  # drop | forget | collect (what a killed command left: a half-made or half-removed branch)
    reason: str
    db_id: str | None = None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        return shapes.record("gc action", {"name": fields.pop("workspace"), **fields})


@dataclass(frozen=True)
class Location:
    """Where a workspace's worktree is, found the way git identifies worktrees: by the branch checked out
    and the admin dir id (.git/worktrees/<id>), which both survive `git worktree move` and `repair`.

    present:  a listed worktree has its branch checked out (or is its own admin dir, detached); `tree`
    prunable: git still lists it but the directory is gone (deleted, or moved without `git worktree repair`)
    reused:   a worktree on another branch now sits at its path or under its id; not the workspace's
    missing:  nothing of it is left in git
    """

    state: str
    tree: Worktree | None = None


def locate(ws: Workspace, listed: dict[Path, Worktree]) -> Location:
    linked = [t for t in listed.values() if t.admin_id is not None and not t.bare]
    path = Path(ws.path).resolve()

    def ours(t: Worktree) -> bool:
        return bool(ws.worktree_id) and t.admin_id == ws.worktree_id

    on_branch = [t for t in linked if ws.branch and t.branch == ws.branch]
    on_branch.sort(key=lambda t: (not ours(t), t.path.resolve() != path))
    live = [t for t in on_branch if not t.prunable]
    if live:
        return Location("present", live[0])
    if on_branch:
        return Location("prunable", on_branch[0])
    same = [t for t in linked if ours(t) or t.path.resolve() == path]
    if not same:
        return Location("missing")
    tree = same[0]
    if tree.branch is None and (ours(tree) or not ws.worktree_id) and tree.path.resolve() == path:
        return Location("prunable" if tree.prunable else "present", tree)  # its own worktree, detached
    return Location("reused", tree)


def worktree_state(ws: Workspace, listed: dict[Path, Worktree]) -> str:
    """present | missing | prunable | reused (see Location)"""
    return locate(ws, listed).state


def listed_worktrees(ctx: Context) -> dict[Path, Worktree]:
    return {w.path.resolve(): w for w in ctx.repo.worktrees()}


CLAUDE_DIR = Path(".claude") / "worktrees"


def removed_by_claude(ctx: Context, listed: dict[Path, Worktree]) -> list[Worktree]:
    """Claude Code worktrees (`<main>/.claude/worktrees/`) whose directory is gone but git still lists them.
    Claude 2.1.332 removes its built-in worktrees itself, with every git hook off: it unlocks, deletes the
    folder, then `git branch -D`, which git refuses while the worktree is registered (and a crash can leave it
    locked, which git never calls prunable). Nothing in Claude's own folder is a worktree moved elsewhere or on
    a removable disk, so a missing directory there is a removal that treefork has to finish (CONTRACTS C2)."""
    claude = (ctx.repo.main_root / CLAUDE_DIR).resolve()
    return [
        t
        for t in listed.values()
        if t.admin_id is not None and t.path.resolve().is_relative_to(claude) and not t.path.exists()
    ]


def finish_claude_removals(ctx: Context) -> list[Worktree]:
    """Unregister the worktrees Claude removed (locked or not) and delete their `worktree-<n>` branch when it
    holds no commit found nowhere else (Claude's own `branch -D` failed); a branch with such commits is kept.
    Their workspaces are then gone, for gc and for the listing commands. Run under the git lock."""
    from treefork.agents import owner

    listed = listed_worktrees(ctx)
    done = removed_by_claude(ctx, listed)
    for tree in done:
        ctx.repo.remove_worktree(tree.path, force=True)
        if tree.branch and ctx.repo.branch_exists(tree.branch) and not owner.unique_commits(ctx.repo, tree.branch):
            ctx.repo.delete_branch(tree.branch)
        output.info(f"treefork: Claude Code removed {tree.path}; unregistered it from git")
    return done


def workspace_at_or_none(ctx: Context, state: State, path: Path) -> Workspace | None:
    """The workspace whose worktree is at `path`, even after a `git worktree move` not yet recorded."""
    ws = state.workspace_by_path_or_none(path)
    if ws is not None:
        return ws
    listed = listed_worktrees(ctx)
    for ws in state.workspaces.values():
        where = locate(ws, listed)
        if where.state == "present" and where.tree and where.tree.path.resolve() == path.resolve():
            return ws
    return None


def follow_moves(ctx: Context) -> None:
    """Record where each workspace's worktree really is now (after `git worktree move`, or a `mv` followed by
    `git worktree repair`), and git's admin id for records made before treefork kept it."""
    listed = listed_worktrees(ctx)
    with ctx.registry.transaction() as st:
        for ws in st.workspaces.values():
            where = locate(ws, listed)
            if where.state != "present" or where.tree is None:
                continue
            if Path(ws.path).resolve() != where.tree.path.resolve():
                output.info(f"workspace {ws.name}: its worktree moved from {ws.path} to {where.tree.path}")
                ws.path = str(where.tree.path)
            ws.worktree_id = where.tree.admin_id


def live_path(ws: Workspace, where: Location) -> Path:
    """Where the workspace's worktree really is (git knows it moved before the registry does)."""
    return where.tree.path if where.state == "present" and where.tree else Path(ws.path)


def _is_gone(ws: Workspace, listed: dict[Path, Worktree]) -> str | None:
    """Why the workspace is provably gone, or None if it is not. A worktree git still lists (moved, reused
    path, its branch checked out anywhere, the main worktree included) keeps it."""
    if ws.in_progress_elsewhere():
        return None  # being created (or removed) right now
    if ws.branch and any(t.branch == ws.branch for t in listed.values()):
        return None
    if locate(ws, listed).state != "missing":
        return None
    return f"its worktree {ws.path} is gone"


def warn_unresolved(ctx: Context, state: State, listed: dict[Path, Worktree]) -> None:
    """Say why gc keeps a workspace whose directory is gone: git still registers its worktree."""
    for ws in state.workspaces.values():
        where = locate(ws, listed)
        if where.state == "prunable" and where.tree is not None:
            output.warn(
                f"workspace {ws.name}: its worktree {where.tree.path} is missing but git still registers it; kept. "
                f"If you moved it: `git worktree repair NEWPATH`; if you deleted it: `git worktree prune`, then `treefork gc`"
            )


def confirmed_deletions(ctx: Context, branches: list[str]) -> list[str]:
    """The branches a reference-transaction reported deleted that are really gone. `git pack-refs` and
    `git gc` report each loose ref they pack as a deletion while the ref lives on in packed-refs."""
    return [b for b in branches if not ctx.repo.branch_exists(b)]


def plan(ctx: Context, *, quiet: bool = True) -> list[GcAction]:
    state = ctx.state()
    state.expect_initialized()
    listed = listed_worktrees(ctx)
    if not quiet:
        warn_unresolved(ctx, state, listed)
    actions = []
    for gone in removed_by_claude(ctx, listed):  # what gc unregisters first (finish_claude_removals)
        listed.pop(gone.path.resolve(), None)
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        reason = _is_gone(ws, listed)
        if reason:
            actions.append(
                GcAction(
                    ws.name, ws.db_branch, "drop" if ws.db_branch else "forget", reason, db_id=ws.db_id or ws.db_branch
                )
            )
    from treefork.workspace.merge_recovery import protected_tags

    tags = protected_tags(state)  # an unfinished merge's trial fork and snapshot are not orphans
    for db in ctx.backend(state).list_branches():
        if any(t in db.name or t in (db.workspace or "") for t in tags):
            continue
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
    named = {a.workspace for a in actions}  # a workspace gc drops takes its half-made branch with it
    for db in ctx.backend(state).leftovers():
        if db.workspace in named or any(t in (db.workspace or "") for t in tags):
            continue  # a half-made branch of an unfinished merge is the merge's to drop
        actions.append(GcAction(db.workspace or "?", db.name, "collect", str(db.extra.get("reason")), db_id=db.id))
    return actions


def reconcile_claude_removals(ctx: Context, listed: dict[Path, Worktree]) -> bool:
    """What a listing command does first, with the worktrees git listed: finish the removals Claude did behind
    treefork's back and drop the databases of their workspaces; whether there were any (then the registry and
    git's listing changed). A cheap no-op (no lock, no backend) when there are none."""
    if not removed_by_claude(ctx, listed):
        return False
    with ctx.registry.git_lock():
        paths = {t.path.resolve() for t in finish_claude_removals(ctx)}
    state = ctx.state()
    for name in sorted(n for n, w in state.workspaces.items() if Path(w.path).resolve() in paths):
        ws = drop_if_gone(ctx, name, branch_may_remain=True)
        if ws is not None:
            output.info(f"dropped {ws.db_branch or 'nothing'} ({name}): its worktree {ws.path} was removed")
    return True


def drop_if_gone(ctx: Context, name: str, *, branch_may_remain: bool = False) -> Workspace | None:
    """Under the lock, re-check that the workspace is provably gone; if so drop its database and forget it.
    Gone means its worktree is gone and, unless `branch_may_remain` (gc), its branch too: a hook that saw a
    branch "deleted" may have seen `git pack-refs` move it into packed-refs."""
    with ctx.registry.transaction() as st:
        ws = st.workspaces.get(name)
        if ws is None or not _is_gone(ws, listed_worktrees(ctx)):
            return None
        if not branch_may_remain and ws.branch and ctx.repo.branch_exists(ws.branch):
            return None
        # killed before the registry learnt its database: the backend may still hold a (half-made) one
        db = ws.db_ref_or_none() or ctx.backend().find_branch_or_none(name)
        if db is not None:
            ctx.backend().delete_branch(db)
        return st.forget(name)


def gc(ctx: Context, *, dry_run: bool) -> list[GcAction]:
    if not dry_run:
        with ctx.registry.git_lock():
            finish_claude_removals(ctx)
        follow_moves(ctx)
    actions = plan(ctx, quiet=False)
    if dry_run:
        return actions
    for act in actions:
        if act.action == "collect":
            act.done = _collect(ctx, act)
        elif act.reason.startswith("its worktree"):
            act.done = drop_if_gone(ctx, act.workspace, branch_may_remain=True) is not None
        else:
            act.done = _drop_orphan(ctx, act)
        if act.done:
            what = "removed" if act.action == "collect" else "dropped"
            output.info(f"{what + ' ' + act.db_branch if act.db_branch else 'forgot'} ({act.workspace}): {act.reason}")
    return actions


def _collect(ctx: Context, act: GcAction) -> bool:
    """What a killed command left (a half-made cluster, its postmaster stopped first; a half-removed one),
    re-checked by the backend as it removes it: a re-run `new` may have just taken it over."""
    return ctx.backend().drop_leftover(DbBranch(name=act.db_branch or "", id=act.db_id or "", workspace=act.workspace))


def _drop_orphan(ctx: Context, act: GcAction) -> bool:
    """A marked database no registry entry owns; re-checked under the lock (a `new` may have just recorded it)."""
    with ctx.registry.transaction() as st:
        if act.workspace in st.workspaces or not act.db_branch:
            return False
        ctx.backend().delete_branch(
            DbBranch(name=act.db_branch, id=act.db_id or act.db_branch, workspace=act.workspace)
        )
        return True
