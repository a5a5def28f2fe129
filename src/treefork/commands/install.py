"""`treefork install [--claude ...]`: the git hooks, plus each chosen agent's own hooks."""

from __future__ import annotations

from treefork import git, output, shapes
from treefork.agents import registry
from treefork.context import Context
from treefork.hooks import git_hooks


def run(*, agents: tuple[str, ...], detect: bool, as_json: bool) -> int:
    git.check_version()
    ctx = Context.open()
    chosen = registry.choose(ctx.repo, agents, detect=detect)
    for agent in chosen:
        agent.preflight(ctx.repo)  # refuse before writing anything
    done = git_hooks.install(ctx.repo)
    for agent in chosen:
        done += agent.install(ctx.repo)
    _report(done, as_json=as_json)
    for agent in registry.used_without_integration(ctx.repo, chosen):
        output.warn(f"{agent.why}: its own worktrees need `treefork install --{agent.name}`")
    if not ctx.state().initialized:
        output.warn("treefork is not initialised here yet: the hooks do nothing until you run `treefork init`")
    from treefork.backends.neon import git_sync

    if git_sync.neon_git_sync_hook_present(ctx.repo.toplevel):
        output.warn(git_sync.EXPLANATION)
    return 0


def _report(done: list[dict[str, str]], *, as_json: bool) -> None:
    if as_json:
        output.emit_json([shapes.record("install action", d) for d in done])
        return
    for d in done:
        output.info(f"{d['hook']}: {d['action']} ({d['path']})")
