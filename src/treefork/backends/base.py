"""The backend interface. Every backend is one module with a class that satisfies `Backend`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from treefork.config import Config
from treefork.state import DbBranch as DbBranch  # the registry records it: its home is state.py
from treefork.state import Workspace

CLONE = "clone"  # reflink: copy-on-write, near-zero time and disk
COPY = "copy"  # a full in-kernel copy
EMPTY = "empty"  # the root, created empty
IMPORT = "import"  # the root, filled by pg_dump | pg_restore
NEON = "neon"  # a Neon copy-on-write branch

ROOT_MARK = "<root>"  # the workspace name a backend records for the root branch


@dataclass(frozen=True)
class Connection:
    url: str
    direct_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more variables for the env file (Neon's NEON_BRANCH)
    context: dict[str, str] = field(default_factory=dict)  # a worktree file for the backend's own CLI (Neon's .neon)


class Secret(Protocol):
    def __call__(self, key: str, *, create: bool = False) -> str | None:
        """The repository's secret key (secrets.json, 0600), made first if create and there is none."""


@dataclass(frozen=True)
class BackendContext:
    """What a backend may know about the repo it serves, and the little of its registry it may use: never the
    registry itself (context.py makes this from it)."""

    repo_id: str
    repo_name: str
    main_root: Path  # the main worktree (its env file is one place the Neon key may live)
    common_dir: Path  # the repository's git common dir, where its registry lives
    config: Config
    settings: dict[str, Any]  # the backend settings as the registry recorded them when the command read it
    progress: Callable[[str], None]
    secret: Secret
    # change the recorded backend settings under the registry's lock; returns them as they are then
    change_settings: Callable[[Callable[[dict[str, Any]], None]], dict[str, Any]]
    workspace_or_none: Callable[[str], Workspace | None]  # a workspace's record, read now


OK, WARN, FAIL = "ok", "warn", "fail"  # a check's level, in `treefork doctor`


@dataclass(frozen=True)
class Health:
    """One of a backend's own `treefork doctor` checks, and what `doctor --fix` runs for it (None: nothing)."""

    name: str
    level: str  # OK, WARN or FAIL
    message: str
    hint: str | None = None
    data: Any = None
    fix: Callable[[], object] | None = field(default=None, compare=False)


@dataclass
class ExtensionsMade:
    """What `treefork sync` made of treefork.toml's `extensions`, and where it could not (each a line to say)."""

    made: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CreateOptions:
    terminate_blockers: bool = False
    ttl_seconds: int | None = None
    git_branch: str | None = None


class ServedElsewhere:
    """The Backend members that say nothing of this machine, for backends whose databases live on a server
    (`--server-url`, Neon): a branch is made and dropped in one request, so nothing is half made or half
    removed here, and no cluster of theirs runs or takes disk on this machine."""

    def expect_deletable(self, branch: DbBranch) -> None:
        pass  # delete_branch itself checks the mark, in the one request that drops it

    def leftovers(self) -> list[DbBranch]:
        return []

    def drop_leftover(self, leftover: DbBranch) -> bool:
        return False

    def server_state(self, branch: DbBranch) -> str | None:
        return None

    def extra_disk_bytes(self, branches: Sequence[DbBranch]) -> dict[str, int | None]:
        return dict.fromkeys((b.id for b in branches), None)

    def health(self) -> list[Health]:
        return []  # the server's own business

    def watch(self, branch: DbBranch) -> Callable[[], str | None]:
        return lambda: None  # the server's log is not this machine's to read

    def make_extensions(self) -> ExtensionsMade:
        return ExtensionsMade()  # a server the user runs, or Neon, has the extensions it has


class Backend(Protocol):
    name: str
    leaf_delete_only: bool  # a branch with children cannot be deleted (Neon)
    supports_ttl: bool  # branches can expire (`new --ttl`; Neon)
    wakes_on_connect: bool  # connecting costs something (Neon wakes a compute): doctor does not try the URLs

    def ensure_ready(self) -> None:
        """Make the backend usable (start the server, check credentials), or raise FatalError."""

    def prepare(self) -> None:
        """Start, in the background, what the next calls will need (a connection, a client), so that it
        overlaps the caller's own work. Errors surface at that next call."""

    def create_root(self, *, import_url: str | None) -> DbBranch:
        """The root branch, idempotently: empty, or filled from an existing database once."""

    def root(self) -> DbBranch:
        """The root branch recorded at init."""

    def create_branch(self, workspace: str, *, parent: DbBranch, options: CreateOptions) -> DbBranch:
        """A copy-on-write child of parent, marked as made by treefork for this repo. Idempotent."""

    def find_branch_or_none(self, workspace: str) -> DbBranch | None:
        """The branch treefork made for this workspace, if it exists."""

    def delete_branch(self, branch: DbBranch) -> None:
        """Drop a branch treefork made. Already gone is success. Refuses anything not ours."""

    def expect_deletable(self, branch: DbBranch) -> None:
        """Raise what delete_branch would refuse with, changing nothing (`rm` asks before it removes a worktree)."""

    def list_branches(self) -> list[DbBranch]:
        """Every branch treefork made for this repo (not the root)."""

    def connection(self, branch: DbBranch) -> Connection:
        """The URLs an application uses for this branch (the branch's own credentials)."""

    def health(self) -> list[Health]:
        """The backend's own `treefork doctor` checks (the local backend: the PostgreSQL each cluster runs on, each
        running cluster's private settings, treefork.toml's extensions), each with its --fix where it has one."""

    def watch(self, branch: DbBranch) -> Callable[[], str | None]:
        """From now on, what the branch's server refuses: the function returned says, after a command treefork
        ran failed, treefork's fix for a refusal it can name (the local backend: an extension the role may not
        create, or its PostgreSQL lacks), else None."""

    def make_extensions(self) -> ExtensionsMade:
        """treefork.toml's `extensions`, made by the backend's admin wherever a database of this repository lacks
        them (`treefork sync`, `doctor --fix`), never by handing the workspace's role a superuser."""

    def extra_disk_bytes(self, branches: Sequence[DbBranch]) -> dict[str, int | None]:
        """By branch id, the disk each branch really adds on this machine (a copy-on-write branch: what it wrote
        since), or None where that is not this machine's disk (Neon). All at once: `ls` asks for every row's."""

    def server_state(self, branch: DbBranch) -> str | None:
        """What serves the branch, as `ls` shows it without waiting: "running" or "stopped" (a local cluster),
        "port taken" (stopped, and another program listens on its port: the app would hand it its password),
        or None when the backend cannot tell cheaply (Neon's computes wake on demand)."""

    def leftovers(self) -> list[DbBranch]:
        """What killed commands left of this repo's branches, that `gc` removes and `doctor` reports: branches
        half made by a process that is gone, removals that were interrupted. extra["reason"] says which."""

    def drop_leftover(self, leftover: DbBranch) -> bool:
        """Remove one of leftovers() if it is still left over (re-checked now); False if it is not."""

    # ---- lifecycle (reset, diff, merge) ----------------------------------------------------------
    def reset_branch(self, branch: DbBranch, *, source: DbBranch) -> DbBranch:
        """Make branch's data the *current* state of source (its parent, or another workspace's branch).
        The branch keeps its URL, port and credentials: nothing in the worktree changes."""

    def schema_diff(self, branch: DbBranch, *, base: DbBranch) -> str:
        """A unified diff of base's schema -> branch's schema, without ownership, privilege, comment and
        ordering noise. Empty text means no difference."""

    def schema_url_or_none(self, branch: DbBranch) -> str | None:
        """A libpq URL from which pg_dump sees branch's whole schema (its server started if it was stopped), for
        the fork points and three-way diffs (`backends/schema_diff.dump`); None when the backend compares
        schemas only itself (Neon's compare_schema)."""

    def snapshot(self, branch: DbBranch, *, tag: str) -> DbBranch:
        """A point-in-time copy of branch that `restore` can put back (taken before a migration). tag, unique
        to the merge, is in its name, so a merge recorded before the snapshot existed can find it."""

    def find_snapshot_or_none(self, branch: DbBranch, *, tag: str) -> DbBranch | None:
        """The snapshot `snapshot(branch, tag=tag)` made, if it exists (a half-made one is removed)."""

    def restore(self, branch: DbBranch, *, snapshot: DbBranch) -> None:
        """Put branch's data back to snapshot's (same URL and credentials), then drop the snapshot. Idempotent:
        a restore killed half-way is finished by running it again."""

    def drop_snapshot(self, snapshot: DbBranch) -> None:
        """Drop a snapshot that is no longer needed. Already gone is success."""

    def writes_so_far(self, branch: DbBranch) -> int | None:
        """A counter of the write transactions branch's server has begun (the next transaction id): the
        difference of two readings is how many wrote in between. None where it cannot be read cheaply."""
