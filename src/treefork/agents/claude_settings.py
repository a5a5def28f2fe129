"""Claude Code settings: our WorktreeCreate/WorktreeRemove hooks live in `.claude/settings.local.json`.

Why there: a committed file would carry this machine's interpreter path, so settings.local.json is kept out
of git (info/exclude). Claude Code up to 2.1.197 re-read hook settings from the new worktree's own checkout
(CONTRACTS C), so treefork copied that file into each worktree; 2.1.332 reads them from the main repository
(C2). The copy is made only where the Claude in use is older than that, or its version cannot be told.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from treefork import platform, selfcmd
from treefork.agents import jsonfile
from treefork.errors import FatalError
from treefork.git import Repo

EVENTS = {"WorktreeCreate": "create", "WorktreeRemove": "remove"}
TIMEOUT = 300
LOCAL = Path(".claude") / "settings.local.json"
SHARED = Path(".claude") / "settings.json"
READS_MAIN_SETTINGS = (2, 1, 332)  # the first version verified to read hooks from the main repository (C2)
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def version_of(exe: str | None) -> tuple[int, ...] | None:
    """Claude Code's version from its executable: the npm package's package.json above it, or the native
    installer's file name (`versions/2.1.332`); None when neither says."""
    if not exe:
        return None
    path = Path(os.path.realpath(exe))
    found = VERSION.match(path.name)
    if found:
        return tuple(int(x) for x in found.groups())
    for parent in list(path.parents)[:4]:
        try:
            meta = json.loads((parent / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found = VERSION.match(str(meta.get("version", ""))) if isinstance(meta, dict) else None
        if found and str(meta.get("name", "")).startswith("@anthropic-ai/claude-code"):
            return tuple(int(x) for x in found.groups())
    return None


def worktrees_need_settings(*, pid: int | None = None) -> bool:
    """Whether a worktree needs its own copy of settings.local.json for the hooks to fire in it: yes unless the
    Claude running (pid) or on PATH is known to read them from the main repository."""
    version = version_of(platform.process_exe_or_none(pid) if pid else None) or version_of(shutil.which("claude"))
    return version is None or version < READS_MAIN_SETTINGS


def hook_command(verb: str, python: str | None = None) -> str:
    return selfcmd.shell("claude-hook", verb, python=python)


def is_ours(command: object) -> bool:
    return isinstance(command, str) and (
        "-m treefork claude-hook " in command or command.startswith("treefork claude-hook ")
    )


def user_settings() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude") / "settings.json"


def files(root: Path) -> list[Path]:
    """Where Claude reads settings for a checkout, lowest precedence first."""
    return [user_settings(), root / SHARED, root / LOCAL]


def foreign_create_hooks(root: Path) -> list[tuple[Path, str]]:
    """WorktreeCreate hooks that are not ours: Claude runs them all and takes the first path in config order."""
    found = []
    for path in files(root):
        data = jsonfile.read(path)
        for cmd in jsonfile.command_hooks(_hooks(data).get("WorktreeCreate")):
            if not is_ours(cmd):
                found.append((path, cmd))
    return found


def _hooks(data: dict[str, Any]) -> dict[str, Any]:
    hooks = data.get("hooks")
    return hooks if isinstance(hooks, dict) else {}


def _change(*, install: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        hooks = data.setdefault("hooks", {})
        for event, verb in EVENTS.items():
            groups = jsonfile.without_commands(hooks.get(event), is_ours)
            if install:
                groups.append({"hooks": [{"type": "command", "command": hook_command(verb), "timeout": TIMEOUT}]})
            jsonfile.put_or_drop(hooks, event, groups)
        if not hooks:
            data.pop("hooks")
        return data

    return change


def install(repo: Repo) -> list[dict[str, str]]:
    root = repo.main_root
    repo.add_exclude(f"/{LOCAL.as_posix()}", why="Claude Code local settings hold this machine's interpreter path")
    done = []
    moved = jsonfile.update(root / SHARED, _change(install=False))
    if moved:
        done.append({"hook": "claude (old install)", "path": str(root / SHARED), "action": "removed"})
    changed = jsonfile.update(root / LOCAL, _change(install=True))
    done.append(
        {
            "hook": "claude WorktreeCreate/WorktreeRemove",
            "path": str(root / LOCAL),
            "action": jsonfile.action(changed=changed),
        }
    )
    return done


def uninstall(repo: Repo) -> list[dict[str, str]]:
    done = []
    for path in (repo.main_root / LOCAL, repo.main_root / SHARED):
        changed = jsonfile.update(path, _change(install=False))
        done.append(
            {
                "hook": "claude WorktreeCreate/WorktreeRemove",
                "path": str(path),
                "action": "removed" if changed else "not installed",
            }
        )
    return done


def installed(repo: Repo) -> bool:
    """Both our hooks, with this interpreter, in the main checkout's settings.local.json."""
    return installed_in(repo.main_root)


def installed_in(root: Path) -> bool:
    data = jsonfile.read(root / LOCAL)
    return all(hook_command(v) in jsonfile.command_hooks(_hooks(data).get(e)) for e, v in EVENTS.items())


def worktree_settings(root: Path) -> dict[str, Any]:
    """The merged `worktree` settings object (symlinkDirectories, sparsePaths, baseRef), local winning."""
    merged: dict[str, Any] = {}
    for path in files(root):
        value = jsonfile.read(path).get("worktree")
        if isinstance(value, dict):
            merged.update(value)
    return merged


def check_local_excluded(repo: Repo) -> None:
    if repo.is_tracked(LOCAL.as_posix(), repo.main_root):
        raise FatalError(
            f"{repo.main_root / LOCAL} is tracked by git; treefork's hooks (with this machine's paths) go there",
            hint=f"git rm --cached {LOCAL.as_posix()} && git commit, then run `treefork install --claude` again",
        )
