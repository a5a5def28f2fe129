"""`treefork uninstall [--claude ...]`: remove our hooks and put back exactly what was there."""

from __future__ import annotations

from treefork.agents import registry
from treefork.commands.install import _report
from treefork.context import Context
from treefork.hooks import git_hooks


def run(*, agents: tuple[str, ...], every: bool, as_json: bool) -> int:
    ctx = Context.open()
    done = git_hooks.uninstall(ctx.repo)
    for agent in registry.choose(ctx.repo, agents, detect=False, every=every):
        done += agent.uninstall(ctx.repo)
    _report(done, as_json=as_json)
    return 0
