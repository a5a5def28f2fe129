"""Ports of their own for each workspace's dev servers (`ports = ["PORT", "VITE_PORT"]` in treefork.toml).

One table for the whole machine, `<treefork home>/ports.json`, changed only under `ports.lock`, so two
`new` commands at once, even in two repositories, never get the same port. A port is given only if
nothing is bound to it (a bind probe) and no workspace holds it. A workspace keeps its ports for its
whole life (they are keyed by its worktree path); `rm` frees them, and a worktree that no longer exists
frees its own at the next allocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from treefork import paths
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.locks import FileLock

DEFAULT_RANGE = (20000, 29999)


def _files() -> tuple[Path, FileLock]:
    home = paths.treefork_home()
    return home / "ports.json", FileLock(home / "ports.lock", timeout=60, what="ports")


def port_range() -> tuple[int, int]:
    """TREEFORK_PORT_RANGE=LOW-HIGH, else 20000-29999."""
    raw = os.environ.get("TREEFORK_PORT_RANGE")
    if not raw:
        return DEFAULT_RANGE
    try:
        low, high = (int(x) for x in raw.split("-", 1))
    except ValueError:
        raise FatalError(f"bad TREEFORK_PORT_RANGE {raw!r}", hint="write it as LOW-HIGH, e.g. 20000-29999") from None
    if not 1024 <= low <= high <= 65535:
        raise FatalError(f"bad TREEFORK_PORT_RANGE {raw!r}", hint="use ports between 1024 and 65535")
    return low, high


@contextlib.contextmanager
def _table() -> Iterator[dict[str, dict[str, Any]]]:
    file, lock = _files()
    file.parent.mkdir(parents=True, exist_ok=True)
    with lock.held():
        try:
            table = json.loads(file.read_text(encoding="utf-8")).get("ports", {})
        except FileNotFoundError:
            table = {}
        except (OSError, ValueError) as e:
            raise FatalError(
                f"cannot read {file}: {e}", hint=f"remove it ({file}); ports are then handed out anew"
            ) from None
        before = json.dumps(table, sort_keys=True)
        yield table
        if json.dumps(table, sort_keys=True) != before:
            atomic_write_text(
                file, json.dumps({"version": 1, "ports": table}, indent=2, sort_keys=True) + "\n", mode=0o644
            )


def allocate(repo: Path, worktree: Path, names: tuple[str, ...]) -> dict[str, int]:
    """name -> port for this worktree: the ones it already holds, new ones for the rest."""
    key = str(worktree.absolute())
    with _table() as table:
        for port, owner in list(table.items()):  # worktrees that are gone free their ports
            if not Path(owner["worktree"]).exists():
                del table[port]
        held = {o["var"]: int(p) for p, o in table.items() if o["worktree"] == key}
        candidates = _candidates(set(map(int, table)))
        for name in names:
            if name not in held:
                held[name] = next(candidates)
                table[str(held[name])] = {"repo": str(repo), "worktree": key, "var": name}
        return {name: held[name] for name in names}


def _candidates(taken: set[int]) -> Iterator[int]:
    low, high = port_range()
    for port in range(low, high + 1):
        if port not in taken and is_free(port):
            yield port
    raise FatalError(
        f"no free port left in {low}-{high}", hint="remove workspaces you no longer need, or set TREEFORK_PORT_RANGE"
    )


def is_free(port: int) -> bool:
    """Nothing is bound to port on any address (binding the wildcard fails if anything holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def held_by(worktree: Path) -> dict[str, int]:
    file, _ = _files()
    try:
        table = json.loads(file.read_text(encoding="utf-8")).get("ports", {})
    except (OSError, ValueError):
        return {}
    key = str(worktree.absolute())
    return {o["var"]: int(p) for p, o in sorted(table.items()) if o.get("worktree") == key}


def release(worktree: Path) -> None:
    key = str(worktree.absolute())
    with _table() as table:
        for port in [p for p, o in table.items() if o["worktree"] == key]:
            del table[port]
