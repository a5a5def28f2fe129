"""Ports of their own for each workspace's dev servers (`ports = ["PORT", "VITE_PORT"]` in treefork.toml).

One table for the whole machine, `<treefork home>/ports.json`, changed only under `ports.lock`, so two
`new` commands at once, even in two repositories, never get the same port. A port is given only if
nothing is bound to it (a bind probe) and no workspace holds it. A workspace keeps its ports for its
whole life: they belong to the workspace (its repository's common dir and its name), not to a path, so a
`git worktree move` keeps them. `rm` frees them; so does, at the next allocation, a workspace gone from
its repository's registry, or whose worktree git no longer has (its admin dir, `.git/worktrees/<id>`, is
gone: `git worktree remove` behind treefork's back; a move keeps it). Entries of an older treefork, keyed
by path, are freed when that path is gone.
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


def allocate(repo: Path, workspace: str, worktree: Path, names: tuple[str, ...]) -> dict[str, int]:
    """name -> port for this workspace of repo (its git common dir): the ones it holds, new ones for the rest."""
    mine = _owner(repo, workspace)
    with _table() as table:
        registries: dict[str, set[str] | None] = {}
        for port, owner in list(table.items()):
            if _gone(owner, registries):
                del table[port]
        key = str(worktree.absolute())
        for owner in table.values():
            if "workspace" not in owner and owner["worktree"] == key:  # an older treefork's: now the workspace's
                owner.update(mine, gitdir=_gitdir(worktree))
        held = {o["var"]: int(p) for p, o in table.items() if _is(o, mine)}
        candidates = _candidates(set(map(int, table)))
        gitdir = _gitdir(worktree)
        for name in names:
            if name not in held:
                held[name] = next(candidates)
                table[str(held[name])] = {**mine, "worktree": key, "gitdir": gitdir, "var": name}
        return {name: held[name] for name in names}


def _owner(repo: Path, workspace: str) -> dict[str, str]:
    return {"repo": str(repo.absolute()), "workspace": workspace}


def _is(entry: dict[str, Any], owner: dict[str, str]) -> bool:
    return entry.get("repo") == owner["repo"] and entry.get("workspace") == owner["workspace"]


def _gone(entry: dict[str, Any], registries: dict[str, set[str] | None]) -> bool:
    """Whether a port's workspace is gone: no longer in its registry, or its worktree removed from git."""
    if "workspace" not in entry:  # an older treefork's entry, keyed by path
        return not Path(entry["worktree"]).exists()
    repo = entry["repo"]
    if repo not in registries:
        registries[repo] = _workspaces_of(Path(repo))
    names = registries[repo]
    if names is not None and entry["workspace"] not in names:
        return True
    return bool(entry.get("gitdir")) and not Path(entry["gitdir"]).is_dir()


def _workspaces_of(common_dir: Path) -> set[str] | None:
    """The workspace names in a repository's registry; empty when the repository is gone, None when it
    cannot be read (then nothing of it is freed)."""
    try:
        data = json.loads((common_dir / "treefork" / "registry.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set() if not common_dir.exists() else None
    except (OSError, ValueError):
        return None
    workspaces = data.get("workspaces") if isinstance(data, dict) else None
    return set(workspaces) if isinstance(workspaces, dict) else None


def _gitdir(worktree: Path) -> str | None:
    from treefork.agents import owner

    gitdir = owner.gitdir_of(worktree)
    return str(gitdir) if gitdir is not None else None


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


def held_by(repo: Path, workspace: str) -> dict[str, int]:
    file, _ = _files()
    try:
        table = json.loads(file.read_text(encoding="utf-8")).get("ports", {})
    except (OSError, ValueError):
        return {}
    mine = _owner(repo, workspace)
    return {o["var"]: int(p) for p, o in sorted(table.items()) if _is(o, mine)}


def release(repo: Path, workspace: str, worktree: Path) -> None:
    mine, key = _owner(repo, workspace), str(worktree.absolute())
    with _table() as table:
        for port in [p for p, o in table.items() if _is(o, mine) or ("workspace" not in o and o["worktree"] == key)]:
            del table[port]
