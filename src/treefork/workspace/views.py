"""A workspace as `ls`, `new` and `sync` report it: the `workspace` record of treefork/shapes.py (docs/json.md).

`row(...)` is usable by any command that reports a workspace (ls; new and sync may adopt it). Every field is
always present; a value that cannot be known is null. Nothing here prints or holds a secret: the server is
taken from the env file's URL without its credentials.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treefork import diskuse, shapes
from treefork.agents import tmux
from treefork.backends.base import DbBranch
from treefork.background import Background
from treefork.context import Context
from treefork.git import Worktree
from treefork.state import State, Workspace
from treefork.workspace import ports, reconcile
from treefork.workspace.answers import Answers

FIELDS = tuple(shapes.WORKSPACE)


def rows(
    ctx: Context,
    state: State,
    *,
    names: list[str] | None = None,
    with_collisions: bool = False,
    listed: dict[Path, Worktree] | None = None,
) -> list[dict[str, Any]]:
    """One `git worktree list` gives every row its worktree, its branch and its parent's HEAD, one
    `git for-each-ref` every branch's commit, and one tmux call every row's agent (a process a row for each
    before); what git says of two commits is kept (answers.py). with_collisions (ls): each row's collisions
    with other workspaces, else null. listed: the caller's own `listed_worktrees`, if it just read one."""
    with_root = names is None or "root" in names
    chosen = [ws for ws in sorted(state.workspaces.values(), key=lambda w: w.name) if names is None or ws.name in names]
    # first, in a thread: the backend opened (once, not raced for by the rows' threads), then every database's
    # disk (a du), while git lists the worktrees and the branches here
    opened = Background(lambda: ctx.backend(state), name="backend")
    dbs = [db for ws in chosen if (db := ws.db_ref_or_none()) is not None]
    disk = Background(
        lambda: opened.result().extra_disk_bytes(dbs + ([opened.result().root()] if with_root else [])), name="disk"
    )
    listed = reconcile.listed_worktrees(ctx) if listed is None else listed
    known = Answers(ctx.registry.dir, ctx.repo.main_root)
    heads = known.heads()
    found = _collisions(ctx, state, listed, heads, known) if with_collisions else None
    opened.result()
    located = {ws.name: reconcile.locate(ws, listed) for ws in chosen}
    paths = {ws.name: reconcile.live_path(ws, located[ws.name]) for ws in chosen}
    here = [n for n in paths if located[n].state == "present"]
    trees = Background(
        lambda: dict(zip(here, diskuse.allocated_bytes([str(paths[n]) for n in here]), strict=True)), name="du"
    )
    expiry = _expiries(ctx, state)
    sessions = tmux.statuses() if chosen else None

    seen_in = functools.partial(Seen, listed=listed, heads=heads, known=known, disk=disk, trees=trees)

    def one(ws: Workspace) -> dict[str, Any]:
        agent = tmux.status_in(sessions, tmux.session_name(state.repo_id, ctx.repo.name, ws.name))
        seen = seen_in(worktree=located[ws.name].state, path=paths[ws.name], agent=agent)
        made = row(ctx, state, ws, seen, expires_at=expiry.get(ws.name))
        made["collisions"] = None if found is None else [c for c in found if ws.name in c["workspaces"]]
        return made

    root = [lambda: _root_row(ctx, state, listed, disk)] if with_root else []
    out = _each([*root, *(functools.partial(one, ws) for ws in chosen)])
    known.save()
    return out


def _each(makers: list[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows, in order, made side by side (the root's too): each waits mostly on its own git processes
    (ahead/behind, dirty), so a listing of many workspaces costs a few rows' time, not the sum of them."""
    if len(makers) < 2:
        return [make() for make in makers]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(makers))) as pool:
        return list(pool.map(lambda make: make(), makers))


def _collisions(
    ctx: Context, state: State, listed: dict[Path, Worktree], heads: dict[str, str], known: Answers
) -> list[dict[str, Any]]:
    """Migration files that collide (from git) and schema collisions as `diff --all` last found them: ls never
    connects to a database. The migration files are read again only when what they are read from changed: the
    branches' heads, the main worktree's HEAD, the workspaces and their parents, the migration folders."""
    from treefork.workspace import collisions

    main = listed.get(ctx.repo.main_root.resolve())
    key = {
        "heads": heads,
        "main": [main.branch, main.head] if main else None,
        "workspaces": sorted([w.name, w.parent, w.branch, w.status] for w in state.workspaces.values()),
        "migration_dirs": list(ctx.config.migration_dirs),
    }
    files = known.collisions(key, lambda: [c.to_json() for c in collisions.of_migrations(ctx, state, listed)])
    return files + [c.to_json() for c in collisions.remembered(ctx, state)]


def workspace_json(ctx: Context, name: str, state: State | None = None, **extra: Any) -> dict[str, Any]:
    """One workspace as `ls --json` shows it (what `new --json` and `sync --json` print too), plus extra. state:
    the registry as the caller last read or changed it, if it has it."""
    found = rows(ctx, ctx.state() if state is None else state, names=[name])
    assert found, name
    env_file = str(ctx.config.env_path(found[0]["path"]))
    return shapes.record("new", {"seconds": None, "existed": None, **found[0], "env_file": env_file, **extra})


@dataclass(frozen=True)
class Seen:
    """What `rows` read once for every row: where the workspace's worktree is, git's listing of worktrees
    (HEADs and branches), its agent's state, every branch's commit, and what git said of commits before."""

    worktree: str  # reconcile.Location.state
    path: Path
    listed: dict[Path, Worktree]
    agent: str
    heads: dict[str, str]  # 'refs/heads/x' -> its commit
    known: Answers
    disk: Background[dict[str, int | None]]  # each database's disk, by its id (Backend.extra_disk_bytes)
    trees: Background[dict[str, int]]  # each present worktree's disk, by workspace (diskuse)


def row(ctx: Context, state: State, ws: Workspace, seen: Seen, *, expires_at: str | None = None) -> dict[str, Any]:
    worktree, path = seen.worktree, seen.path
    present = worktree == "present"
    ahead, behind = _ahead_behind(ctx, state, ws, seen) if present else (None, None)
    return {
        "name": ws.name,
        "is_root": False,
        "branch": ws.branch,
        "parent": ws.parent or "root",
        "forked_from": ws.forked_from,
        "path": str(path),
        "status": ws.status,
        "error": ws.error,
        "worktree": worktree,
        "origin": ws.origin,
        "ahead": ahead,
        "behind": behind,
        "dirty": ctx.repo.is_dirty(path) if present else None,
        "backend": state.backend,
        "db_branch": ws.db_branch,
        "db_id": ws.db_id,
        "clone_method": ws.clone_method,
        "server": _server(ctx, path) if present else None,
        "server_state": _server_state(ctx, state, ws.db_ref_or_none()),
        "disk_bytes": seen.trees.result().get(ws.name) if present else None,
        "db_disk_bytes": _db_disk(seen.disk, ws.db_ref_or_none()),
        "ports": ports.held_by(ctx.repo.common_dir, ws.name),
        "agent": seen.agent,
        "created_at": shapes.when(ws.created_at),
        "expires_at": expires_at,
        "collisions": None,
        "code_base": ws.code_base,
        "data_ahead_of_code": _data_ahead_of_code(ctx, ws, seen) if present else None,
    }


def _data_ahead_of_code(ctx: Context, ws: Workspace, seen: Seen) -> bool | None:
    """Whether the worktree's code, as it is now, still lacks the code its database was forked with (null when
    that was not recorded: a workspace made by an older treefork); create.data_ahead_of_code's answer."""
    code = ctx.repo.head_in(seen.path, seen.listed)
    if ws.data_base is None or code is None:
        return None
    return code != ws.data_base and not seen.known.is_ancestor(ws.data_base, of=code)


def _root_row(
    ctx: Context, state: State, listed: dict[Path, Worktree], disk: Background[dict[str, int | None]]
) -> dict[str, Any]:
    main = ctx.repo.main_root
    tree = listed.get(main.resolve())
    return {
        **dict.fromkeys(FIELDS),
        "name": "root",
        "is_root": True,
        "branch": tree.branch if tree is not None else ctx.repo.current_branch(main),
        "path": str(main),
        "status": "ready",
        "worktree": "present",
        "dirty": ctx.repo.is_dirty(main),
        "backend": state.backend,
        "db_branch": state.root_db_branch,
        "db_id": state.root_db_id,
        "clone_method": state.root_clone_method,
        "server": _server(ctx, main),
        "server_state": _server_state(ctx, state, ctx.backend(state).root()),
        "db_disk_bytes": _db_disk(disk, ctx.backend(state).root()),
        "ports": {},
        "agent": None,
    }


def _ahead_behind(ctx: Context, state: State, ws: Workspace, seen: Seen) -> tuple[int | None, int | None]:
    """Commits on the workspace's branch that its parent's HEAD lacks, and the reverse."""
    parent = state.workspaces.get(ws.parent) if ws.parent else None
    parent_path = Path(parent.path) if parent else ctx.repo.main_root
    base = ctx.repo.head_in(parent_path, seen.listed) if parent_path.exists() else None
    tip = seen.heads.get(f"refs/heads/{ws.branch}") if ws.branch else None
    found = seen.known.ahead_behind(base, tip) if base and tip else None
    return found if found is not None else (None, None)


def _db_disk(disk: Background[dict[str, int | None]], db: DbBranch | None) -> int | None:
    return disk.result().get(db.id) if db is not None else None


def _server_state(ctx: Context, state: State, db: DbBranch | None) -> str | None:
    return ctx.backend(state).server_state(db) if db is not None else None


def _server(ctx: Context, worktree: Path) -> str | None:
    """host:port of the URL in the worktree's env file (credentials left out)."""
    from treefork import dbsettings
    from treefork.workspace import envbuild

    try:
        parts = dbsettings.parse(envbuild.load_env(ctx.config.env_path(worktree)).get(ctx.config.url_var))
        return f"{parts.host}:{parts.port}" if parts and parts.host else None
    except Exception:  # an unreadable env file is doctor's business, not ls's
        return None


def _expiries(ctx: Context, state: State) -> dict[str, str]:
    """workspace -> expires_at, for backends whose branches expire (Neon's TTL). One listing call."""
    if not state.workspaces or not ctx.backend(state).supports_ttl:
        return {}
    from treefork.errors import FatalError

    try:
        branches = ctx.backend(state).list_branches()
    except FatalError:
        return {}
    return {b.workspace: str(b.extra["expires_at"]) for b in branches if b.workspace and b.extra.get("expires_at")}
