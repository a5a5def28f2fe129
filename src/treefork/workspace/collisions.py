"""Collisions between live workspaces, named before any merge (`diff --all`, `ls`, the start of `merge`):

- schema: two workspaces changed the same object since their fork points (diffs.py: three-way, so a sibling
  already merged into the parent is not one);
- migration files: two branches add migrations that claim the same place in their framework's order
  (migrations.py), named with both files and the framework's fix.

Schema collisions compare catalog signatures (backends/catalog_signature.py: one query a database, side by side)
with the ones recorded at each fork point; a workspace without one falls back to its pg_dump diff. `merge`
compares only the workspace it merges with the others; `ls` never connects to a database, so it shows the
migration collisions it reads from git and the schema collisions `diff --all` or a merge last found.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treefork.backends import schema_changes
from treefork.background import Background
from treefork.context import Context
from treefork.fsutil import atomic_write_text
from treefork.git import Worktree
from treefork.state import READY, UNPROVISIONED, State

if TYPE_CHECKING:  # imported where a check runs: diffs (pg_dump, catalog signatures), which `ls` never runs, and
    # migrations (git), which `ls` runs only when a branch moved (answers.py keeps what it found)
    from treefork.workspace import migrations
    from treefork.workspace.diffs import SchemaDiff

SCHEMA, MIGRATION = "schema", "migration"


@dataclass(frozen=True)
class Collision:
    kind: str  # SCHEMA or MIGRATION
    workspaces: tuple[str, str]
    objects: tuple[str, ...] = ()  # schema: the object keys both changed
    files: tuple[str, str] = ("", "")  # migration: each side's file, in the order of `workspaces`
    framework: str = ""
    fix: str = ""

    def involves(self, name: str) -> bool:
        return name in self.workspaces

    def other(self, name: str) -> str:
        a, b = self.workspaces
        return b if a == name else a

    def message(self) -> str:
        (a, b), (fa, fb) = self.workspaces, self.files
        if self.kind == SCHEMA:
            return f"workspaces {a} and {b} both changed {describe(self.objects)} since they forked"
        return f"migrations collide ({self.framework}): {a} adds {fa} and {b} adds {fb}; {self.fix}"

    def warning_for(self, name: str) -> str:
        """What `merge name` says before it starts."""
        other = self.other(name)
        if self.kind == SCHEMA:
            return f"workspace {other} also changed {describe(self.objects)}; its migrations may collide with these"
        mine, theirs = self.files if self.workspaces[0] == name else self.files[::-1]
        return f"{mine} collides with {other}'s {theirs} ({self.framework}); {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "workspaces": list(self.workspaces),
            "objects": list(self.objects),
            "files": dict(zip(self.workspaces, self.files, strict=True)) if self.kind == MIGRATION else {},
            "framework": self.framework or None,
            "fix": self.fix or None,
            "message": self.message(),
        }


def describe(keys: tuple[str, ...] | list[str]) -> str:
    """'TABLE public.users' reads 'public.users'; any other object with its kind: 'index public.users_email_idx'."""
    words = []
    for key in keys:
        kind, name = schema_changes.kind_of(key), schema_changes.name_of(key)
        words.append(name if kind == "table" else f"{kind} {name}")
    return ", ".join(words)


def of_schemas(changed: dict[str, list[str]], *, involving: str | None = None) -> list[Collision]:
    """Two workspaces that changed the same object since their fork points (`diffs.changed_since_fork`), each
    pair once in name order; only the pairs with `involving` when given (what `merge` needs)."""
    names = sorted(changed)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if involving is not None and involving not in (a, b):
                continue
            theirs = set(changed[b])
            shared = tuple(k for k in changed[a] if k in theirs)
            if shared:
                out.append(Collision(SCHEMA, (a, b), objects=shared))
    return out


def of_migrations(ctx: Context, state: State, listed: dict[Path, Worktree]) -> list[Collision]:
    from treefork.workspace import migrations

    files = migrations.added_files(
        _lineages(ctx, state, listed), ctx.repo.main_root, extra_dirs=ctx.config.migration_dirs
    )
    live = {w.name for w in state.workspaces.values()}
    out = []
    for a, b in migrations.clashes(files):
        if a.side in live or b.side in live:  # never two of the parent's own, merged already
            fix = migrations.FIXES[a.framework]
            out.append(Collision(MIGRATION, (a.side, b.side), files=(a.path, b.path), framework=a.framework, fix=fix))
    return out


def _lineages(ctx: Context, state: State, listed: dict[Path, Worktree]) -> list[migrations.Lineage]:
    from treefork.workspace import migrations

    main = listed.get(ctx.repo.main_root.resolve())
    root_ref = (f"refs/heads/{main.branch}" if main.branch else main.head) if main else None
    out = []
    for ws in sorted(state.workspaces.values(), key=lambda w: w.name):
        if ws.status not in (READY, UNPROVISIONED) or not ws.branch:
            continue
        parent = state.workspaces.get(ws.parent) if ws.parent else None
        base = f"refs/heads/{parent.branch}" if parent is not None and parent.branch else root_ref
        if base:
            out.append(migrations.Lineage(ws.name, ws.parent or "root", f"refs/heads/{ws.branch}", base))
    return out


# ---- what diff --all last found, for ls -------------------------------------------------------------


def _found_file(ctx: Context) -> Path:
    return ctx.registry.dir / "forkpoints" / "schema-collisions.json"


def remember(ctx: Context, found: list[Collision], *, only: str | None = None) -> None:
    """The schema collisions of a run that compared every live database, for `ls` to show without connecting;
    with `only`, a run that compared that workspace with the others (`merge`): its pairs replace its old ones."""
    kept = [c for c in _remembered_records(ctx) if only is not None and only not in c["workspaces"]]
    data = {"at": int(time.time()), "collisions": kept + [c.to_json() for c in found if c.kind == SCHEMA]}
    path = _found_file(ctx)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(path, json.dumps(data, sort_keys=True) + "\n", mode=0o600)


def _remembered_records(ctx: Context) -> list[dict[str, Any]]:
    try:
        records = json.loads(_found_file(ctx).read_text(encoding="utf-8"))["collisions"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [c for c in records if isinstance(c, dict) and isinstance(c.get("workspaces"), list)]


def remembered(ctx: Context, state: State) -> list[Collision]:
    """The schema collisions `diff --all` (or a merge) last found, between workspaces that are still live."""
    try:
        found = [(tuple(c["workspaces"]), tuple(c["objects"])) for c in _remembered_records(ctx)]
    except (KeyError, TypeError):
        return []
    return [
        Collision(SCHEMA, (a, b), objects=objects)
        for (a, b), objects in found
        if a in state.workspaces and b in state.workspaces
    ]


def all_of(ctx: Context, state: State, found: list[SchemaDiff], listed: dict[Path, Worktree]) -> list[Collision]:
    """Schema and migration collisions between the live workspaces, `found` the fork-point diffs of every one
    of them. The schema ones come from each workspace's catalog signature against its fork point's, read for
    the kinds of object its diff shows changed (`diffs.changed_as_dumped`)."""
    from treefork.workspace import diffs

    schema = of_schemas(diffs.changed_as_dumped(ctx, state, found))
    remember(ctx, schema)
    return schema + of_migrations(ctx, state, listed)


def involving(ctx: Context, state: State, name: str, listed: dict[Path, Worktree]) -> list[Collision]:
    """The collisions between name and the other live workspaces, before `merge name`: one catalog query a
    workspace (in threads) while git lists the migration files."""
    from treefork.workspace import diffs

    ctx.backend(state)  # opened here, in this thread, before the other one uses it
    schema_changes_found = Background(lambda: diffs.changed_beside(ctx, state, name), name="signatures")
    migration = [c for c in of_migrations(ctx, state, listed) if c.involves(name)]
    schema = of_schemas(schema_changes_found.result(), involving=name)
    remember(ctx, schema, only=name)
    return schema + migration
