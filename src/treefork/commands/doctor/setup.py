"""Doctor's checks that automatic provisioning is set up: git's hooks, the agents' integrations, what Claude
Code's own worktree flow would copy, Neon's git-sync hook, and worktrees that have no workspace."""

from __future__ import annotations

from pathlib import Path

from treefork.backends.base import FAIL, OK, WARN
from treefork.commands.doctor.checks import Check
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import git
from treefork.hooks import git_hooks
from treefork.workspace import reconcile


def hook_checks(ctx: Context) -> list[Check]:
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


def agent_checks(ctx: Context) -> list[Check]:
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


def worktree_checks(ctx: Context) -> list[Check]:
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


def worktreeinclude_check(ctx: Context) -> Check:
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


def neon_git_check(ctx: Context) -> Check:
    from treefork.backends.neon import git_sync

    if git_sync.neon_git_sync_hook_present(ctx.repo.toplevel):
        return Check("neon git-sync hook", FAIL, git_sync.EXPLANATION, "neon git uninstall")
    return Check("neon git-sync hook", OK, "not installed")
