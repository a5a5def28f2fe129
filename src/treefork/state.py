"""The per-repo registry: one JSON file in the common git dir, shared by every worktree, under a file lock.

It holds no secrets (those live in secrets.json beside it, mode 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.locks import FileLock

VERSION = 1

# Workspace statuses
CREATING = "creating"  # intent recorded, not finished (a crash leaves this; a re-run or gc finishes it)
READY = "ready"
UNPROVISIONED = "unprovisioned"  # the worktree exists but its database could not be made
REMOVING = "removing"

# Who made a workspace (its `origin`, docs/lifecycle.md): `treefork new`; git's post-checkout hook; Claude Code's
# WorktreeCreate hook; `treefork sync` (an agent's session-start hook, or by hand); "adopted": a worktree whose
# provisioning failed, recorded so that `sync` and `doctor` find it.
ORIGINS = ("new", "post-checkout", "claude", "sync", "adopted")


@dataclass(frozen=True)
class DbBranch:
    """A database branch as the backend knows it."""

    name: str  # database name (local) or Neon branch name
    id: str  # the backend's id (the database name for local; br-... for Neon)
    workspace: str | None = None  # the owner marker: which workspace of which repo made it
    clone_method: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Workspace:
    name: str
    branch: str | None
    path: str
    parent: str | None  # parent workspace name; None = the root
    db_branch: str | None = None  # backend name of the database branch
    db_id: str | None = None  # backend id (Neon branch id); None for local
    clone_method: str | None = None
    status: str = CREATING
    origin: str = "new"  # one of ORIGINS
    created_worktree: bool = False
    created_branch: bool = False
    worktree_id: str | None = None  # git's admin dir id (.git/worktrees/<id>): survives `git worktree move`
    forked_from: str | None = None  # the real parent once it was removed (`parent` is then the nearest live one)
    code_base: str | None = None  # the commit its worktree started from
    data_base: str | None = None  # the parent worktree's HEAD when its database was forked (the data's code)
    created_at: float = field(default_factory=time.time)
    pid: int | None = None
    pid_started: int | None = None  # the process's start time (platform.process_start_time): a reused pid is not it
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))  # every field is a scalar, so a shallow copy is a full one

    def in_progress_elsewhere(self) -> bool:
        """Another live treefork process is creating or removing this workspace right now."""
        from treefork import procinfo

        return (
            self.status in (CREATING, REMOVING)
            and self.pid not in (None, os.getpid())
            and procinfo.same_process(self.pid, self.pid_started)
        )

    def next_step(self) -> str:
        """The command that takes this workspace out of its current status."""
        if self.status == REMOVING:
            return f"finish removing it with `treefork rm {self.name}`"
        if self.status == UNPROVISIONED:
            return f"provision it with `treefork sync {self.name}`"
        return f"finish it with `treefork new {self.name}` first"

    def db_ref_or_none(self) -> DbBranch | None:
        """The database branch the registry records for this workspace (None before it was made)."""

        if not self.db_branch:
            return None
        return DbBranch(
            name=self.db_branch, id=self.db_id or self.db_branch, workspace=self.name, clone_method=self.clone_method
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workspace:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class State:
    repo_id: str | None = None
    backend: str | None = None
    backend_settings: dict[str, Any] = field(default_factory=dict)
    root_db_branch: str | None = None
    root_db_id: str | None = None
    root_clone_method: str | None = None
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    # merges in progress, or interrupted, by workspace name: the intent workspace/merge_recovery.py finishes
    merges: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def initialized(self) -> bool:
        return self.repo_id is not None and self.backend is not None and self.root_db_branch is not None

    def expect_initialized(self) -> None:
        if not self.initialized:
            raise FatalError("treefork is not initialised in this repository", hint="run `treefork init` first")

    def expect_workspace(self, name: str) -> Workspace:
        ws = self.workspaces.get(name)
        if ws is None:
            raise FatalError(f"no workspace named {name!r}", hint="`treefork ls` lists them")
        return ws

    def workspace_by_path_or_none(self, path: Path) -> Workspace | None:
        for ws in self.workspaces.values():
            if Path(ws.path) == path:
                return ws
        return None

    def workspace_by_branch_or_none(self, branch: str) -> Workspace | None:
        for ws in self.workspaces.values():
            if ws.branch == branch:
                return ws
        return None

    def forget(self, name: str) -> Workspace | None:
        """Remove a workspace from the registry; its children now hang off its parent, and remember their
        real parent in `forked_from` (shown as removed)."""
        ws = self.workspaces.pop(name, None)
        if ws is not None:
            for child in self.workspaces.values():
                if child.parent == name:
                    child.forked_from = child.forked_from or name
                    child.parent = ws.parent
        return ws

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k not in ("workspaces", "merges")}
        if self.merges:  # absent when none: a registry with no merge in progress reads as before
            data["merges"] = {k: dict(v) for k, v in sorted(self.merges.items())}
        data["backend_settings"] = dict(self.backend_settings)
        data["version"] = VERSION
        data["workspaces"] = {k: v.to_json() for k, v in sorted(self.workspaces.items())}
        return data

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        spaces = {k: Workspace.from_json(v) for k, v in data.get("workspaces", {}).items()}
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "workspaces"}
        return cls(**fields, workspaces=spaces)


class Registry:
    def __init__(self, common_dir: Path) -> None:
        self.dir = common_dir / "treefork"
        self.file = self.dir / "registry.json"
        self.secrets_file = self.dir / "secrets.json"
        self._lock = FileLock(self.dir / "registry.lock", timeout=60, what="registry")
        self._git_lock = FileLock(self.dir / "git.lock", timeout=300, what="git")
        self._secrets: dict[str, str] = {}  # what this process read or wrote: a secret, once made, never changes

    def read(self) -> State:
        """A consistent snapshot (writes are atomic renames, so no lock is needed to read)."""
        return self._load()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, load, let the caller change the state, save it if it changed."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)  # not writable by others, whatever the umask
        with self._lock.held():
            before = self._read_text()
            state = self._parse(before)
            yield state
            after = state.to_text()
            if after != (State().to_text() if before is None else before):
                atomic_write_text(self.file, after, mode=0o644)

    @contextlib.contextmanager
    def git_lock(self) -> Iterator[None]:
        """Serialises this repo's worktree add/remove steps (git races with itself)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)  # not writable by others, whatever the umask
        with self._git_lock.held():
            yield

    def _load(self) -> State:
        return self._parse(self._read_text())

    def _read_text(self) -> str | None:
        try:
            return self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise FatalError(
                f"cannot read the registry {self.file}: {e.strerror}", hint="check its permissions"
            ) from None

    def _parse(self, text: str | None) -> State:
        if text is None:
            return State()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("unknown format")
            return State.from_json(data)
        except (ValueError, TypeError, KeyError) as e:
            raise FatalError(
                f"the registry {self.file} is corrupted ({e})",
                hint=f"restore it from a backup, or move it aside (mv {self.file} {self.file}.broken) and run "
                "`treefork init` to start a new registry (existing worktrees and databases are then not tracked)",
            ) from None

    # secrets: per-repo values that must never enter the registry, a worktree or the output
    def secret(self, key: str, *, create: bool = False) -> str | None:
        """The secret key, read under the lock once per process (a command asks for its role's password a few
        times), made first if create."""
        if key in self._secrets:
            return self._secrets[key]
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)  # not writable by others, whatever the umask
        with self._lock.held():
            data = self._load_secrets()
            if key not in data and create:
                data[key] = os.urandom(16).hex()  # what secrets.token_hex does, without its imports
                self._save_secrets(data)
            self._secrets = data
            return data.get(key)

    def set_secret(self, key: str, value: str) -> None:
        with self._lock.held():
            data = self._load_secrets()
            data[key] = value
            self._save_secrets(data)
            self._secrets = data

    def forget_secret(self, key: str) -> None:
        with self._lock.held():
            data = self._load_secrets()
            if data.pop(key, None) is not None:
                self._save_secrets(data)
            self._secrets = data

    def _load_secrets(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self.secrets_file.read_text(encoding="utf-8"))
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise FatalError(
                f"cannot read {self.secrets_file}: {e}", hint="remove it and run `treefork init` again"
            ) from None

    def _save_secrets(self, data: dict[str, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)  # not writable by others, whatever the umask
        atomic_write_text(self.secrets_file, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o600)


def new_repo_id() -> str:
    return os.urandom(3).hex()
