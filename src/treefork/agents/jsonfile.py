"""Agent settings files are JSON objects we merge into: read strictly, write atomically, keep every other key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text


def read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as e:
        raise FatalError(f"{path} is not valid JSON ({e})", hint="fix it by hand, then run the command again") from None
    if not isinstance(data, dict):
        raise FatalError(f"{path} does not hold a JSON object", hint="fix it by hand, then run the command again")
    return data


def write(path: Path, data: dict[str, Any], *, mode: int = 0o644) -> bool:
    """Write the object as indented JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n", mode=mode)


def update(path: Path, change: Any, *, mode: int = 0o644) -> bool:
    """Apply change(copy) and write if it differs; an absent file stays absent when nothing is added."""
    before = read(path)
    after = change(json.loads(json.dumps(before)))
    if after == before or (not after and not path.exists()):
        return False
    return write(path, after, mode=mode)


def command_hooks(groups: Any) -> list[str]:
    """The commands of a Claude/Gemini/Codex style hook list: [{"matcher"?, "hooks": [{"command": ...}]}]."""
    if not isinstance(groups, list):
        return []
    return [
        h["command"]
        for g in groups
        if isinstance(g, dict) and isinstance(g.get("hooks"), list)
        for h in g["hooks"]
        if isinstance(h, dict) and isinstance(h.get("command"), str)
    ]


def without_commands(groups: Any, is_ours: Any) -> list[Any]:
    """The hook groups with our commands taken out; a group left empty by that goes too."""
    if not isinstance(groups, list):
        return []
    kept = []
    for g in groups:
        if not isinstance(g, dict) or not isinstance(g.get("hooks"), list):
            kept.append(g)
            continue
        hooks = [h for h in g["hooks"] if not (isinstance(h, dict) and is_ours(h.get("command")))]
        if hooks or not g["hooks"]:
            kept.append({**g, "hooks": hooks})
    return kept


def put_or_drop(data: dict[str, Any], key: str, value: Any) -> None:
    """data[key] = value while value has content; an empty value takes the key out, so that uninstalling leaves
    no empty entry behind in the agent's settings file."""
    if value:
        data[key] = value
    else:
        data.pop(key, None)


def action(*, changed: bool) -> str:
    """What an install did to a settings file, as `install --json` reports it."""
    return "installed" if changed else "unchanged"
