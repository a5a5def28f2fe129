"""Tools that run a per-repository setup command in every worktree they make (CONTRACTS C2, "Other agents"):
treefork's provisioning command goes into that file, merged with what the user has, and its teardown where
the tool has one. These files are usually committed, so the commands hold no machine path and work from any
clone: the launcher `install` wrote (agents/launcher.py), else `treefork` on PATH, else a one-line message.

- Cursor: `.cursor/worktrees.json`, a list of commands under `setup-worktree-unix` if the user has that list,
  else `setup-worktree` (run in the new worktree; `$ROOT_WORKTREE_PATH` is the main one).
- Conductor: `conductor.json` `scripts.setup` and `scripts.archive`, shell strings (run in the workspace,
  `$CONDUCTOR_ROOT_PATH` is the repository root).
- Factory Droid: `.factory/worktree-setups/treefork.yaml`, a file of our own: `script` and `cleanup_script`.
- Kilo: `.kilo/setup-script`, a shell script its Agent Manager runs in each new worktree (`WORKTREE_PATH`,
  `REPO_PATH`); our lines sit between two marker comments.
Ours go first: the database must exist before the user's own setup (migrations) runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from treefork.agents import jsonfile, launcher
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.git import Repo

_MISSING = (
    "echo 'treefork: not set up in this clone (no `treefork install`, no treefork on PATH): this worktree has "
    "no database of its own; pip install treefork, then run: treefork install && treefork sync' >&2"
)


def _command(verb: str, fallback: str) -> str:
    hook = '"$(git rev-parse --git-common-dir 2>/dev/null)/treefork/agent-hook"'
    return (
        f'h={hook}; if [ -x "$h" ]; then "$h"{verb}; '
        f"elif command -v treefork >/dev/null 2>&1; then {fallback}; else {_MISSING}; fi"
    )


SETUP = _command("", "treefork sync --quiet")
TEARDOWN = _command(" teardown", "treefork rm .")
BEGIN, END = "# >>> treefork (treefork install --kilo) >>>", "# <<< treefork <<<"
Report = list[dict[str, str]]


def is_ours(command: object) -> bool:
    return (
        isinstance(command, str)
        and "/treefork/agent-hook" in command
        and ("treefork sync" in command or "treefork rm ." in command)
    )


def _entry(tool: str, path: Path, *, changed: bool, install: bool) -> dict[str, str]:
    action = jsonfile.action(changed=changed) if install else "removed" if changed else "not installed"
    return {"hook": f"{tool} setup", "path": str(path), "action": action}


# ---- Cursor -------------------------------------------------------------------------------------------------
def cursor_file(root: Path) -> Path:
    return root / ".cursor" / "worktrees.json"


def _cursor_change(*, install: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        key = "setup-worktree-unix" if "setup-worktree-unix" in data else "setup-worktree"
        found = data.get(key, [])
        if not isinstance(found, list):  # a script path: ours cannot go into someone else's script
            raise FatalError(
                f"{key} in .cursor/worktrees.json names a script ({found}), not a list of commands",
                hint=f"add this line to that script yourself: {SETUP}",
            )
        commands = [c for c in found if not is_ours(c)]
        data[key] = [SETUP, *commands] if install else commands
        if not data[key]:
            data.pop(key)
        return data

    return change


def _json_install(repo: Repo, tool: str, path: Path, change: Callable[..., Any]) -> Report:
    launcher.write(repo)
    if not path.exists():  # uninstall removes what install made, and only that
        _made(repo, tool).parent.mkdir(parents=True, exist_ok=True)
        _made(repo, tool).write_text(str(path) + "\n", encoding="utf-8")
    return [_entry(tool, path, changed=jsonfile.update(path, change(install=True)), install=True)]


def _json_uninstall(repo: Repo, tool: str, path: Path, change: Callable[..., Any]) -> Report:
    changed = jsonfile.update(path, change(install=False))
    made = _made(repo, tool)
    if made.exists():
        if path.exists() and jsonfile.read(path) == {}:
            path.unlink()
            changed = True
        made.unlink()
    return [_entry(tool, path, changed=changed, install=False)]


def _made(repo: Repo, tool: str) -> Path:
    """The record that `install --<tool>` created the tool's file (inside .git, never tracked)."""
    return repo.common_dir / "treefork" / f"{tool}-file-made"


def cursor_install(repo: Repo) -> Report:
    return _json_install(repo, "cursor", cursor_file(repo.main_root), _cursor_change)


def cursor_uninstall(repo: Repo) -> Report:
    return _json_uninstall(repo, "cursor", cursor_file(repo.main_root), _cursor_change)


def cursor_installed(repo: Repo) -> bool:
    data = jsonfile.read(cursor_file(repo.main_root))
    return any(is_ours(c) for key in ("setup-worktree-unix", "setup-worktree") for c in _list(data.get(key)))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


# ---- Conductor ----------------------------------------------------------------------------------------------
def conductor_file(root: Path) -> Path:
    return root / "conductor.json"


def _lines_without_ours(script: object) -> list[str]:
    return [line for line in str(script or "").splitlines() if not is_ours(line)]


def _conductor_change(*, install: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        found = data.get("scripts")
        scripts: dict[str, Any] = found if isinstance(found, dict) else {}
        for key, ours in (("setup", SETUP), ("archive", TEARDOWN)):
            lines = _lines_without_ours(scripts.get(key))
            jsonfile.put_or_drop(scripts, key, "\n".join([ours, *lines] if install else lines))
        jsonfile.put_or_drop(data, "scripts", scripts)
        return data

    return change


def conductor_install(repo: Repo) -> Report:
    return _json_install(repo, "conductor", conductor_file(repo.main_root), _conductor_change)


def conductor_uninstall(repo: Repo) -> Report:
    return _json_uninstall(repo, "conductor", conductor_file(repo.main_root), _conductor_change)


def conductor_installed(repo: Repo) -> bool:
    found = jsonfile.read(conductor_file(repo.main_root)).get("scripts")
    return isinstance(found, dict) and any(is_ours(line) for line in str(found.get("setup") or "").splitlines())


# ---- Factory Droid ------------------------------------------------------------------------------------------
def droid_file(root: Path) -> Path:
    return root / ".factory" / "worktree-setups" / "treefork.yaml"


DROID_YAML = (
    "# written by `treefork install --droid`; `treefork uninstall --droid` removes it\n"
    "name: treefork\n"
    f"script: {json.dumps(SETUP)}\n"
    f"cleanup_script: {json.dumps(TEARDOWN)}\n"
)


def droid_install(repo: Repo) -> Report:
    launcher.write(repo)
    path = droid_file(repo.main_root)
    if path.exists() and not droid_installed(repo):
        raise FatalError(f"{path} exists and is not treefork's", hint="rename it, then run the install again")
    path.parent.mkdir(parents=True, exist_ok=True)
    return [_entry("droid", path, changed=atomic_write_text(path, DROID_YAML, mode=0o644), install=True)]


def droid_uninstall(repo: Repo) -> Report:
    path = droid_file(repo.main_root)
    ours = droid_installed(repo)
    if ours:
        path.unlink()
    return [_entry("droid", path, changed=ours, install=False)]


def droid_installed(repo: Repo) -> bool:
    try:
        return "treefork install --droid" in droid_file(repo.main_root).read_text(encoding="utf-8")
    except OSError:
        return False


# ---- Kilo ---------------------------------------------------------------------------------------------------
def kilo_file(root: Path) -> Path:
    return root / ".kilo" / "setup-script"


def _kilo_text(text: str, *, install: bool) -> str:
    lines = text.splitlines()
    if BEGIN in lines and END in lines:
        lines = lines[: lines.index(BEGIN)] + lines[lines.index(END) + 1 :]
    if not install:
        return "" if [x for x in lines if x.strip()] in ([], ["#!/bin/sh"]) else "\n".join(lines) + "\n"
    shebang = lines[:1] if lines and lines[0].startswith("#!") else ["#!/bin/sh"]
    rest = lines[1:] if lines and lines[0].startswith("#!") else lines
    return "\n".join([*shebang, BEGIN, f'cd "${{WORKTREE_PATH:-.}}" && {{ {SETUP}; }}', END, *rest]) + "\n"


def kilo_install(repo: Repo) -> Report:
    launcher.write(repo)
    path = kilo_file(repo.main_root)
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = atomic_write_text(path, _kilo_text(before, install=True), mode=0o755)
    return [_entry("kilo", path, changed=changed, install=True)]


def kilo_uninstall(repo: Repo) -> Report:
    path = kilo_file(repo.main_root)
    if not kilo_installed(repo):
        return [_entry("kilo", path, changed=False, install=False)]
    after = _kilo_text(path.read_text(encoding="utf-8"), install=False)
    if after:
        atomic_write_text(path, after, mode=0o755)
    else:
        path.unlink()
    return [_entry("kilo", path, changed=True, install=False)]


def kilo_installed(repo: Repo) -> bool:
    try:
        return BEGIN in kilo_file(repo.main_root).read_text(encoding="utf-8")
    except OSError:
        return False
