"""Claude Code worktree hooks (CONTRACTS C): WorktreeCreate / WorktreeRemove, and the settings.json merge.

With a WorktreeCreate hook configured, Claude Code runs no git logic itself: we add the worktree at
`<main>/.claude/worktrees/<n>` on branch `worktree-<n>` (`<n>` = name with '/' -> '+'), provision it,
and print its absolute path as the last stdout line. Everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from treefork import output, workspace
from treefork.context import Context
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.hooks.handlers import IN_PROGRESS_ENV
from treefork.names import WorkspaceName
from treefork.state import READY

EVENTS = {"WorktreeCreate": "create", "WorktreeRemove": "remove"}
TIMEOUT = 300
WORKTREES_DIR = ".claude/worktrees"


# ---- settings.json ------------------------------------------------------------------------------


def hook_command(verb: str, python: str | None = None) -> str:
    return f"{shlex.quote(python or sys.executable)} -m treefork claude-hook {verb}"


def is_our_command(command: object) -> bool:
    return isinstance(command, str) and (
        "-m treefork claude-hook " in command or command.startswith("treefork claude-hook ")
    )


def settings_path(ctx: Context) -> Path:
    return ctx.repo.main_root / ".claude" / "settings.json"


def read_settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise FatalError(f"{path} is not valid JSON ({e})", hint="fix it by hand, then run the command again") from None
    if not isinstance(data, dict):
        raise FatalError(f"{path} does not hold a JSON object", hint="fix it by hand, then run the command again")
    return data


def merged(settings: dict[str, Any], *, install: bool) -> dict[str, Any]:
    """The settings with our two hooks added (install) or removed; every other key untouched."""
    data: dict[str, Any] = json.loads(json.dumps(settings))
    hooks = data.setdefault("hooks", {})
    for event, verb in EVENTS.items():
        groups = [g for g in (_without_ours(g) for g in hooks.get(event, [])) if g is not None]
        if install:
            groups.append({"hooks": [{"type": "command", "command": hook_command(verb), "timeout": TIMEOUT}]})
        if groups:
            hooks[event] = groups
        else:
            hooks.pop(event, None)
    if not hooks:
        data.pop("hooks")
    return data


def _without_ours(group: Any) -> Any:
    if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
        return group
    kept = [h for h in group["hooks"] if not (isinstance(h, dict) and is_our_command(h.get("command")))]
    if not kept and group["hooks"]:
        return None
    return {**group, "hooks": kept}


def write_settings(ctx: Context, *, install: bool) -> tuple[Path, bool]:
    path = settings_path(ctx)
    before = read_settings(path)
    after = merged(before, install=install)
    if after == before:
        return path, False
    if not install and not path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, atomic_write_text(path, json.dumps(after, indent=2) + "\n", mode=0o644)


def settings_installed(ctx: Context) -> bool:
    data = read_settings(settings_path(ctx))
    return all(_has_current(data, e, v) for e, v in EVENTS.items())


def _has_current(data: dict[str, Any], event: str, verb: str) -> bool:
    return any(
        isinstance(h, dict) and h.get("command") == hook_command(verb)
        for g in data.get("hooks", {}).get(event, [])
        if isinstance(g, dict)
        for h in g.get("hooks", [])
    )


# ---- the hooks ----------------------------------------------------------------------------------


def read_payload(stream: int = 0) -> dict[str, Any]:
    """One JSON object from stdin, without waiting for EOF (Claude Code may keep the pipe open)."""
    decoder, text = json.JSONDecoder(), ""
    while True:
        chunk = os.read(stream, 65536)
        if chunk:
            text += chunk.decode("utf-8", errors="replace")
        stripped = text.lstrip()
        if stripped:
            try:
                obj, _ = decoder.raw_decode(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return obj
        if not chunk:
            raise FatalError(
                "no JSON object on stdin",
                hint='Claude Code sends one; to test: echo \'{"name":"x"}\' | treefork claude-hook create',
            )


def _context(payload: dict[str, Any]) -> Context:
    cwd = payload.get("cwd")
    return Context.open(Path(cwd) if isinstance(cwd, str) and Path(cwd).is_dir() else None)


def create(payload: dict[str, Any]) -> Path:
    raw = payload.get("name") or payload.get("worktree_name")
    if not isinstance(raw, str) or not raw:
        raise FatalError("the WorktreeCreate payload has no name", hint='expected {"name": "..."} on stdin')
    name = WorkspaceName.of(raw)
    os.environ[IN_PROGRESS_ENV] = "1"  # our own `git worktree add` fires post-checkout: it must back off
    ctx = _context(payload)
    ctx.state().expect_initialized()
    path = ctx.repo.main_root / WORKTREES_DIR / name.dir_name
    _exclude_worktrees_dir(ctx)
    parent = _cwd_workspace(ctx)
    output.info(f"treefork: creating worktree {path} (branch worktree-{name.dir_name}, parent {parent or 'root'})")
    ws = workspace.create(
        ctx,
        workspace.NewRequest(name=name, branch=f"worktree-{name.dir_name}", path=path, parent=parent, origin="claude"),
    )
    output.info(f"treefork: workspace {ws.name} ready: database {ws.db_branch} ({ws.clone_method})")
    return path.absolute()


def _cwd_workspace(ctx: Context) -> str | None:
    """Fork from the workspace Claude Code runs in, if it is one; else from the root (local HEAD)."""
    ws = ctx.state().workspace_by_path_or_none(ctx.repo.toplevel)
    return ws.name if ws is not None and ws.status == READY else None


def _exclude_worktrees_dir(ctx: Context) -> None:
    ctx.repo.add_exclude(f"/{WORKTREES_DIR}/", why="Claude Code worktrees")


def remove(payload: dict[str, Any]) -> str:
    raw = payload.get("worktree_path")
    if not isinstance(raw, str) or not raw:
        raise FatalError(
            "the WorktreeRemove payload has no worktree_path", hint='expected {"worktree_path": "/abs"} on stdin'
        )
    os.environ[IN_PROGRESS_ENV] = "1"
    path = Path(raw).absolute()
    ctx = _context(payload)
    ws = ctx.state().workspace_by_path_or_none(path) if ctx.state().initialized else None
    if ws is not None:
        workspace.remove(ctx, ws.name, force=True, delete_branch=True)
        return f"removed workspace {ws.name}: worktree, branch {ws.branch} and its database"
    tree = next((w for w in ctx.repo.worktrees() if w.path.resolve() == path.resolve()), None)
    if tree is None:
        return f"{path} is already gone"
    with ctx.registry.git_lock():
        ctx.repo.remove_worktree(tree.path, force=True)
        if tree.branch and tree.branch.startswith("worktree-") and ctx.repo.branch_exists(tree.branch):
            ctx.repo.delete_branch(tree.branch)
    return f"removed worktree {path} (it had no treefork workspace)"
