"""Doctor's checks that the registry, the backend and the databases agree: the backend reachable, merges a kill
interrupted, orphans, env file URLs that connect, each cluster's private settings, code behind its data, and
workspaces without a database."""

from __future__ import annotations

from pathlib import Path

from treefork.backends.base import FAIL, OK, WARN, DbBranch
from treefork.commands.doctor.checks import Check
from treefork.context import Context
from treefork.errors import FatalError
from treefork.state import READY, UNPROVISIONED, State
from treefork.workspace import reconcile


def state_checks(ctx: Context) -> list[Check]:
    state = ctx.state()
    if not state.initialized:
        return [Check("treefork", FAIL, "not initialised in this repository", "treefork init")]
    checks = []
    try:
        backend = ctx.backend(state)
        if backend.server_state(backend.root()) == "stopped":
            checks.append(
                Check("backend", OK, f"{state.backend}: the root's database is stopped (not started to check)")
            )
        else:
            backend.ensure_ready()
            checks.append(Check("backend", OK, f"{state.backend} is reachable"))
    except FatalError as e:  # the backend's own checks first: gone binaries are why a cluster would not start
        return [*checks, *_backend_health(ctx, state), Check("backend", FAIL, e.message, e.hint)]
    checks.append(_merge_check(ctx, state))
    orphans = reconcile.plan(ctx)
    checks.append(
        Check(
            "orphans",
            FAIL if orphans else OK,
            f"{len(orphans)} database branch(es) or workspace(s) whose worktree is gone" if orphans else "none",
            "treefork gc" if orphans else None,
            [a.to_json() for a in orphans],
            fix=lambda: reconcile.gc(ctx, dry_run=False),
        )
    )
    checks += _connection_checks(ctx, state)
    checks += _backend_health(ctx, state)
    checks.append(_code_and_data_check(ctx, state))
    unprov = sorted(w.name for w in state.workspaces.values() if w.status == UNPROVISIONED)
    checks.append(
        Check(
            "unprovisioned",
            FAIL if unprov else OK,
            f"workspaces without a database: {', '.join(unprov)}" if unprov else "none",
            f"treefork sync {unprov[0]}" if unprov else None,
            unprov,
            fix=lambda: _sync(unprov),
        )
    )
    return checks


def _merge_check(ctx: Context, state: State) -> Check:
    """Merges a kill interrupted: each is finished (completed or undone) by `--fix`, as `treefork merge` would."""
    from treefork.workspace import merge_recovery

    unfinished = [m for m in merge_recovery.pending(state) if not m.running_elsewhere()]
    if not unfinished:
        return Check("merges", OK, "none interrupted")
    names = [m.workspace for m in unfinished]

    def fix() -> None:
        for m in unfinished:
            merge_recovery.recover(ctx, m, abort=False)

    return Check(
        "merges",
        FAIL,
        "interrupted, not finished: " + ", ".join(f"{m.workspace} into {m.parent} (at {m.step})" for m in unfinished),
        f"treefork merge {names[0]} (finishes it) or treefork merge --abort {names[0]} (undoes it)",
        names,
        fix=fix,
    )


def _connection_checks(ctx: Context, state: State) -> list[Check]:
    """The URL each ready workspace's env file holds really opens its database (local clusters: a lost record,
    a port taken, an env file edited by hand). A stopped database is not started to find out, and Neon's
    computes are not woken up."""
    if ctx.backend(state).wakes_on_connect:
        return []
    from treefork import dbsettings
    from treefork.backends.local import libpq
    from treefork.workspace import envbuild

    backend = ctx.backend(state)
    places = [(w.name, Path(w.path)) for w in state.workspaces.values() if w.status == READY]
    places.insert(0, ("root", ctx.repo.main_root))
    states = {name: backend.server_state(_db_of(ctx, state, name)) for name, _ in places}
    stopped = [name for name, _ in places if states[name] == "stopped"]
    squatted = [name for name, _ in places if states[name] == "port taken"]
    bad = []
    checked = 0
    for name, where in places:
        url = envbuild.load_env(ctx.config.env_path(where)).get(ctx.config.url_var) if where.exists() else None
        if not url or name in stopped or name in squatted:
            continue  # a missing worktree is the worktree check's finding; a squatter would get the password
        if name == "root" and dbsettings.url_target(url) != dbsettings.url_target(
            backend.connection(backend.root()).url
        ):
            continue  # the main worktree keeps a database of its own (`init --no-import`)
        checked += 1
        try:
            libpq.connect_url(dbsettings.libpq_url(url), connect_timeout=3).close()  # the app's spelling, as libpq
        except FatalError as e:
            bad.append(f"{name} ({e.message})")
    checks = []
    if bad:
        checks.append(
            Check(
                "connections",
                FAIL,
                "env file URLs that do not connect: " + "; ".join(bad),
                "treefork sync NAME (says why), then treefork reset NAME to make its database again",
            )
        )
    else:
        checks.append(Check("connections", OK, f"{checked} env file URL(s) connect"))
    if squatted:
        checks.append(
            Check(
                "ports",
                FAIL,
                f"{', '.join(squatted)}: stopped, and another program listens on its port (an app connecting now "
                "would hand that program its password)",
                "`treefork server status` names the ports; stop the program listening there, then `treefork server start`",
                squatted,
            )
        )
    if stopped:
        checks.append(
            Check(
                "stopped databases",
                WARN,
                f"{', '.join(stopped)}: each starts on the next command that needs it",
                "treefork server start",
                stopped,
                fix=lambda: [backend.connection(_db_of(ctx, state, n)) for n in stopped],
            )
        )
    return checks


def _backend_health(ctx: Context, state: State) -> list[Check]:
    """The backend's own checks (Backend.health: the local backend's binaries, cluster settings, extensions)."""
    try:
        found = ctx.backend(state).health()
    except FatalError as e:
        return [Check("backend checks", FAIL, e.message, e.hint)]
    return [Check(h.name, h.level, h.message, h.hint, h.data, fix=h.fix) for h in found]


def _db_of(ctx: Context, state: State, name: str) -> DbBranch:
    if name == "root":
        return ctx.backend(state).root()
    db = state.workspaces[name].db_ref_or_none()
    assert db is not None
    return db


def _code_and_data_check(ctx: Context, state: State) -> Check:
    """Workspaces whose code still lacks the commits of the code their database was forked with (a base the
    user asked for, `new --base` or Claude's `worktree.baseRef`)."""
    from treefork.workspace.create import data_ahead_of_code

    behind = []
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        head = ctx.repo.head_of(Path(ws.path)) if ws.data_base and Path(ws.path).is_dir() else None
        if head is not None and ws.data_base is not None and data_ahead_of_code(ctx, ws.data_base, code=head):
            behind.append((ws, ws.data_base))
    if not behind:
        return Check("code and data", OK, "every workspace's code has the commits its data was forked with")
    ws, base = behind[0]
    return Check(
        "code and data",
        WARN,
        "the data is ahead of the code in: "
        + ", ".join(
            f"{w.name} (lacks {b[:12]}, {w.parent or 'root'}'s HEAD when its database was forked)" for w, b in behind
        ),
        f"git -C {ws.path} merge {base[:12]}",
        [w.name for w, _ in behind],
    )


def _sync(names: list[str]) -> None:
    from treefork.commands import sync

    for name in names:
        sync.run(name, quiet=True, as_json=False)
