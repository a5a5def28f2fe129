"""Collisions between live workspaces, named before any merge (`diff --all`, `ls`, the start of `merge`):

- schema: two workspaces changed the same object since their fork points (diffs.py: three-way, so a sibling
  already merged into the parent is not one);
- migration files: two branches add migrations that claim the same place in their framework's order
  (migrations.py), named with both files and the framework's fix.

`diff --all` and `merge` dump every live database (once, side by side); `ls` never connects to a database, so
it shows the migration collisions it reads from git and the schema collisions `diff --all` last found.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treefork.backends import schema_changes
from treefork.context import Context
from treefork.fsutil import atomic_write_text
from treefork.git import Worktree
from treefork.state import READY, UNPROVISIONED, State
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


def of_schemas(diffs: list[SchemaDiff]) -> list[Collision]:
    out = []
    for i, a in enumerate(diffs):
        for b in diffs[i + 1 :]:
            shared = tuple(k for k in a.objects if k in set(b.objects))
            if shared:
                out.append(Collision(SCHEMA, (a.name, b.name), objects=shared))
    return out


def of_migrations(ctx: Context, state: State, listed: dict[Path, Worktree]) -> list[Collision]:
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


def remember(ctx: Context, found: list[Collision]) -> None:
    """The schema collisions of a run that dumped every live database, for `ls` to show without connecting."""
    data = {"at": int(time.time()), "collisions": [c.to_json() for c in found if c.kind == SCHEMA]}
    path = _found_file(ctx)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(path, json.dumps(data, sort_keys=True) + "\n", mode=0o600)


def remembered(ctx: Context, state: State) -> list[Collision]:
    """The schema collisions `diff --all` (or a merge) last found, between workspaces that are still live."""
    try:
        data = json.loads(_found_file(ctx).read_text(encoding="utf-8"))
        found = [(tuple(c["workspaces"]), tuple(c["objects"])) for c in data["collisions"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        Collision(SCHEMA, (a, b), objects=objects)
        for (a, b), objects in found
        if a in state.workspaces and b in state.workspaces
    ]


def all_of(ctx: Context, state: State, diffs: list[SchemaDiff], listed: dict[Path, Worktree]) -> list[Collision]:
    """Schema and migration collisions between the live workspaces, from diffs of every one of them."""
    schema = of_schemas(diffs)
    remember(ctx, schema)
    return schema + of_migrations(ctx, state, listed)
