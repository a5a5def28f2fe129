"""`treefork install [--claude]`: the git hooks (and, with --claude, the Claude Code worktree hooks)."""

from __future__ import annotations

from treefork import git, output
from treefork.context import Context
from treefork.hooks import claude, git_hooks


def run(*, claude_code: bool, as_json: bool) -> int:
    git.check_version()
    ctx = Context.open()
    done = git_hooks.install(ctx.repo)
    if claude_code:
        path, changed = claude.write_settings(ctx, install=True)
        done.append(
            {
                "hook": "WorktreeCreate/WorktreeRemove",
                "path": str(path),
                "action": "installed" if changed else "unchanged",
            }
        )
    _report(done, as_json=as_json)
    if not ctx.state().initialized:
        output.warn("treefork is not initialised here yet: the hooks do nothing until you run `treefork init`")
    return 0


def _report(done: list[dict[str, str]], *, as_json: bool) -> None:
    if as_json:
        output.emit_json(done)
        return
    for d in done:
        output.info(f"{d['hook']}: {d['action']} ({d['path']})")
