"""Agents with no worktree events run the launcher (agents/launcher.py) from their own session-start hook:
- Gemini CLI: `SessionStart` in the project's `.gemini/settings.json` (the command holds no machine path,
  so the file may be committed);
- Codex: `SessionStart` in `$CODEX_HOME/hooks.json` (default ~/.codex): its worktrees live outside the
  repository, where no project file reaches. Install also records Codex's trust in it (codex_trust.py);
- Qwen Code: `SessionStart` in the project's `.qwen/settings.json`, like Gemini;
- opencode: the project's start command, which opencode runs in each worktree it creates or resets; set
  through `opencode serve`'s project API (agents/opencode.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from treefork.agents import jsonfile, launcher
from treefork.git import Repo

EVENT = "SessionStart"


def gemini_settings(root: Path) -> Path:
    return root / ".gemini" / "settings.json"


Installer = tuple[
    Callable[[Repo], list[dict[str, str]]], Callable[[Repo], list[dict[str, str]]], Callable[[Repo], bool]
]


def codex_hooks(root: Path) -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex") / "hooks.json"


def _change(*, install: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        found = data.get("hooks")
        hooks: dict[str, Any] = found if isinstance(found, dict) else {}
        groups = jsonfile.without_commands(hooks.get(EVENT), launcher.is_ours)
        if install:
            groups.append({"hooks": [{"type": "command", "command": launcher.COMMAND, "name": "treefork"}]})
        jsonfile.put_or_drop(hooks, EVENT, groups)
        jsonfile.put_or_drop(data, "hooks", hooks)
        return data

    return change


def _installer(agent: str, settings: Callable[[Path], Path]) -> Installer:
    def install(repo: Repo) -> list[dict[str, str]]:
        wrote = launcher.write(repo)
        path = settings(repo.main_root)
        changed = jsonfile.update(path, _change(install=True))
        done = [
            {"hook": f"{agent} agent-hook", "path": str(launcher.path(repo)), "action": jsonfile.action(changed=wrote)},
            {"hook": f"{agent} {EVENT}", "path": str(path), "action": jsonfile.action(changed=changed)},
        ]
        if agent == "codex":
            from treefork.agents import codex_trust

            done.append(
                {"hook": "codex hook trust", "path": str(path), "action": codex_trust.trust_ours(repo.main_root)}
            )
        return done

    def uninstall(repo: Repo) -> list[dict[str, str]]:
        path = settings(repo.main_root)
        changed = jsonfile.update(path, _change(install=False))
        return [{"hook": f"{agent} {EVENT}", "path": str(path), "action": "removed" if changed else "not installed"}]

    def installed(repo: Repo) -> bool:
        found = jsonfile.read(settings(repo.main_root)).get("hooks")
        hooks: dict[str, Any] = found if isinstance(found, dict) else {}
        return any(launcher.is_ours(c) for c in jsonfile.command_hooks(hooks.get(EVENT)))

    return install, uninstall, installed


def qwen_settings(root: Path) -> Path:
    return root / ".qwen" / "settings.json"


def qwen() -> Installer:
    """Qwen Code: `SessionStart` in the project's `.qwen/settings.json` (Claude's format). Its worktrees fire
    post-checkout, but Qwen then points core.hooksPath at `.husky/` when that folder exists (CONTRACTS C2):
    from then on only its own hook reaches them."""
    return _installer("qwen", qwen_settings)


def gemini() -> Installer:
    return _installer("gemini", gemini_settings)


def codex() -> Installer:
    return _installer("codex", codex_hooks)
