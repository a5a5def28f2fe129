"""`treefork uninstall [--claude]`: remove our hooks and put back exactly what was there."""

from __future__ import annotations

from treefork.commands.install import _report
from treefork.context import Context
from treefork.hooks import claude, git_hooks


def run(*, claude_code: bool, as_json: bool) -> int:
    ctx = Context.open()
    done = git_hooks.uninstall(ctx.repo)
    if claude_code:
        path, changed = claude.write_settings(ctx, install=False)
        done.append(
            {
                "hook": "WorktreeCreate/WorktreeRemove",
                "path": str(path),
                "action": "removed" if changed else "not installed",
            }
        )
    _report(done, as_json=as_json)
    return 0
