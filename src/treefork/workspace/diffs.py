"""`treefork diff`'s use case: what a workspace changed in its schema since its fork point (three-way: a
sibling merged into the parent meanwhile is not this workspace's change), or against its parent's current
schema (`--against-parent`, the two-way view).

Every database is dumped at most once a run, and the dumps run side by side in a thread pool: pg_dump is a
process, and the server does its share, so the Python side mostly waits.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from treefork import output, shapes
from treefork.backends import catalog_signature, schema_changes
from treefork.backends import schema_diff as schemas
from treefork.backends.base import Backend, DbBranch
from treefork.backends.schema_changes import Change
from treefork.context import Context
from treefork.state import READY, State, Workspace
from treefork.workspace import forkpoint
from treefork.workspace.lifecycle import expect_ready, parent_side

FORK_POINT, PARENT = "fork point", "parent"


@dataclass(frozen=True)
class SchemaDiff:
    name: str
    base: str  # the parent workspace ("root" for the main worktree)
    against: str  # FORK_POINT, or PARENT: the parent's current schema
    diff: str
    changes: list[Change] = field(default_factory=list)
    note: str | None = None  # why a fork-point diff fell back to the parent

    @property
    def objects(self) -> list[str]:
        """The changed objects' keys ('INDEX public.users_email_idx'), once each."""
        return list(dict.fromkeys(c.key for c in self.changes))

    @property
    def tables(self) -> set[str]:
        return {schema_changes.name_of(k) for k in self.objects if schema_changes.kind_of(k) == "table"}

    def to_json(self, collisions: list[dict[str, object]] | None = None) -> dict[str, object]:
        return shapes.record(
            "diff",
            {
                "name": self.name,
                "parent": self.base,
                "against": self.against,
                "note": self.note,
                "changed": bool(self.diff),
                "objects": self.objects,
                "changes": [c.to_json() for c in self.changes],
                "tables": sorted(self.tables),
                "diff": self.diff,
                "collisions": collisions,
            },
        )


def _workers() -> int:
    """pg_dump and its server backend share the work: one of each per core keeps the cores busy."""
    return max(2, min(16, 2 * (os.cpu_count() or 1)))


class _PerDatabase:
    """What `_read` makes of each database's URL, at most once a run; `fetch` reads many side by side."""

    workers = 0  # side by side at most

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._found: dict[str, dict[str, str] | None] = {}

    def _read(self, url: str) -> dict[str, str]:
        raise NotImplementedError

    def fetch(self, dbs: Iterable[DbBranch]) -> None:
        """Each worker asks the backend for its database's URL (once a command: `_urls_of`), then reads it.
        Asking may start that database's server, under that cluster's own lock; asking in turn, one login
        at a time, was most of `merge`'s wait with 20 workspaces."""
        todo = {db.id: db for db in dbs if db.id not in self._found}
        if not todo:
            return
        urls = _urls_of(self.backend)

        def read(db: DbBranch) -> dict[str, str] | None:
            if db.id not in urls:
                urls[db.id] = self.backend.schema_url_or_none(db)
            url = urls[db.id]
            return None if url is None else self._read(url)

        with ThreadPoolExecutor(max_workers=min(len(todo), self.workers), thread_name_prefix="treefork-read") as pool:
            self._found.update(zip(todo, pool.map(read, todo.values()), strict=True))

    def _of_or_none(self, db: DbBranch) -> dict[str, str] | None:
        self.fetch([db])
        return self._found[db.id]


# Each database's URL, asked for once a command: per backend, which a Context opens once
_URLS: weakref.WeakKeyDictionary[Backend, dict[str, str | None]] = weakref.WeakKeyDictionary()


def _urls_of(backend: Backend) -> dict[str, str | None]:
    return _URLS.setdefault(backend, {})


class Dumps(_PerDatabase):
    """Each database's schema (`schema_diff.objects` of its pg_dump), dumped at most once a run."""

    workers = _workers()

    def _read(self, url: str) -> dict[str, str]:
        return schemas.objects(schemas.dump(url))

    def objects_or_none(self, db: DbBranch) -> dict[str, str] | None:
        return self._of_or_none(db)


class Signatures(_PerDatabase):
    """Each database's catalog signature ({object key: md5}), one query each, at most once a run; with
    `prefixes`, of the objects of those kinds only."""

    workers = 2 * _workers()  # a connection's handshake and a cold backend's first plan are mostly waiting

    def __init__(self, backend: Backend, *, prefixes: frozenset[str] | None = None) -> None:
        super().__init__(backend)
        self.prefixes = prefixes

    def _read(self, url: str) -> dict[str, str]:
        return catalog_signature.of_url(url, prefixes=self.prefixes)

    def signature_or_none(self, db: DbBranch) -> dict[str, str] | None:
        return self._of_or_none(db)


def since_fork(ctx: Context, state: State, name: str, dumps: Dumps | None = None) -> SchemaDiff:
    """What name changed since its fork point; without a recorded one, against its parent's current schema."""
    ws = expect_ready(state, name)
    return _since(ctx, state, ws, forkpoint.load_or_none(ctx, ws), dumps or Dumps(ctx.backend(state)))


def _since(ctx: Context, state: State, ws: Workspace, fork: dict[str, str] | None, dumps: Dumps) -> SchemaDiff:
    name = ws.name
    if fork is not None and (now := dumps.objects_or_none(_db(ws))) is not None:
        return _of_objects(name, ws.parent or "root", FORK_POINT, fork, now)
    note = f"{name} has no recorded fork point (made before treefork kept them, or its backend keeps none): compared with {ws.parent or 'root'}'s current schema"
    return against_parent(ctx, state, name, dumps, note=note)


def against_parent(
    ctx: Context, state: State, name: str, dumps: Dumps | None = None, *, note: str | None = None
) -> SchemaDiff:
    ws = expect_ready(state, name)
    parent = parent_side(ctx, state, ws)
    backend = ctx.backend(state)
    dumps = dumps or Dumps(backend)
    dumps.fetch([_db(ws), parent.db])
    mine, base = dumps.objects_or_none(_db(ws)), dumps.objects_or_none(parent.db)
    if mine is not None and base is not None:
        return _of_objects(name, parent.name, PARENT, base, mine, note=note)
    text = backend.schema_diff(_db(ws), base=parent.db)  # a backend that compares schemas itself
    return SchemaDiff(name, parent.name, PARENT, text, schema_changes.keys_named(schemas.changed_objects(text)), note)


def diff_all(ctx: Context, state: State, workspaces: list[Workspace] | None = None) -> list[SchemaDiff]:
    """Every ready workspace (or those given) since its fork point: each database dumped once, side by side."""
    ready = live(state) if workspaces is None else workspaces
    if not ready:
        return []
    backend = ctx.backend(state)
    dumps = Dumps(backend)
    forks = {w.name: forkpoint.load_or_none(ctx, w) for w in ready}
    dumps.fetch([_db(w) for w in ready] + [parent_side(ctx, state, w).db for w in ready if forks[w.name] is None])
    return [_since(ctx, state, w, forks[w.name], dumps) for w in ready]


def changed_since_fork(
    ctx: Context, state: State, workspaces: list[Workspace], *, among: frozenset[str] | None = None
) -> dict[str, list[str]]:
    """The keys of the objects each workspace changed since its fork point, for collisions: its catalog signature
    against the one recorded at its fork point (one query a database, side by side); with `among`, only those
    keys, and only their kinds are read. A workspace without a recorded signature (an older treefork's, or a
    backend without URLs) falls back to its pg_dump diff."""
    kinds = None if among is None else frozenset(map(catalog_signature.prefix_of, among))
    out = _signed_changes(ctx, state, workspaces, None if kinds is None or "" in kinds else kinds)
    out.update({d.name: d.objects for d in diff_all(ctx, state, [w for w in workspaces if w.name not in out])})
    return {w.name: [k for k in out[w.name] if among is None or k in among] for w in workspaces}


def changed_beside(ctx: Context, state: State, name: str) -> dict[str, list[str]]:
    """What `merge name` compares: the objects name changed since its fork point, and which of those each other
    live workspace changed too (only those kinds read from each: a smaller query)."""
    ready = live(state)
    mine = changed_since_fork(ctx, state, [w for w in ready if w.name == name]).get(name, [])
    others = [w for w in ready if w.name != name]
    if not mine or not others:
        return {name: mine}
    return {name: mine, **changed_since_fork(ctx, state, others, among=frozenset(mine))}


def changed_as_dumped(ctx: Context, state: State, found: list[SchemaDiff]) -> dict[str, list[str]]:
    """For `diff --all`, which has just dumped every workspace: each one's changed objects from its signature,
    read only for the kinds of object its dump shows changed, and not at all where the dump shows no change
    (the two agree on what changed: tests/test_catalog_signature.py). A workspace without a recorded signature
    keeps its dump's objects."""
    ready = {w.name: w for w in live(state)}
    out = {d.name: d.objects for d in found}
    groups: dict[frozenset[str], list[Workspace]] = {}
    for d in found:
        kinds = frozenset(map(catalog_signature.prefix_of, d.objects))
        if d.name in ready and kinds and "" not in kinds:
            groups.setdefault(kinds, []).append(ready[d.name])
    for kinds, workspaces in groups.items():
        out.update(_signed_changes(ctx, state, workspaces, kinds))
    return out


def _signed_changes(
    ctx: Context, state: State, workspaces: list[Workspace], kinds: frozenset[str] | None
) -> dict[str, list[str]]:
    """Each workspace's changed keys (of those kinds, or all) from its signature now and at its fork point; a
    workspace without both is left out."""
    forks = {w.name: forkpoint.signature_or_none(ctx, w) for w in workspaces}
    signatures = Signatures(ctx.backend(state), prefixes=kinds)
    signatures.fetch([_db(w) for w in workspaces if forks[w.name] is not None])
    out = {}
    for w in workspaces:
        fork = forks[w.name]
        now = signatures.signature_or_none(_db(w)) if fork is not None else None
        if fork is not None and now is not None:
            if kinds is not None:  # a part may yield more kinds than asked for (every kind of constraint)
                fork, now = (
                    {k: v for k, v in sig.items() if catalog_signature.prefix_of(k) in kinds} for sig in (fork, now)
                )
            out[w.name] = catalog_signature.changed(fork, now)
    return out


def live(state: State) -> list[Workspace]:
    """The ready workspaces with a database, by name: the ones diffs and collisions look at."""
    return sorted((w for w in state.workspaces.values() if w.status == READY and w.db_branch), key=lambda w: w.name)


def say_notes(diffs: Iterable[SchemaDiff]) -> None:
    for d in diffs:
        if d.note:
            output.info(d.note)


def _of_objects(
    name: str, base: str, against: str, before: dict[str, str], after: dict[str, str], *, note: str | None = None
) -> SchemaDiff:
    return SchemaDiff(
        name, base, against, schemas.diff_objects(before, after), schema_changes.between(before, after), note
    )


def _db(ws: Workspace) -> DbBranch:
    db = ws.db_ref_or_none()
    assert db is not None  # expect_ready checked it
    return db
