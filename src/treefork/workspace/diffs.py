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

    def fetch(self, dbs: Iterable[DbBranch], *, alongside: tuple[_PerDatabase, ...] = ()) -> None:
        """The URLs are asked for in turn, in this thread (asking may start a server), once a run
        (`_urls_of`), each read starting in the pool as soon as its URL is known; `alongside` readers of the
        same databases are fed from the same URLs in the same pass."""
        readers = (self, *alongside)
        todo = {db.id: db for db in dbs if any(db.id not in r._found for r in readers)}
        if not todo:
            return
        urls = _urls_of(self.backend)
        workers = min(len(todo) * len(readers), max(r.workers for r in readers))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="treefork-read") as pool:
            reads = []
            for i, db in todo.items():
                if i not in urls:
                    urls[i] = self.backend.schema_url_or_none(db)
                for reader in (r for r in readers if i not in r._found):
                    reader._found[i] = None
                    if (url := urls[i]) is not None:
                        reads.append((reader, i, pool.submit(reader._read, url)))
            for reader, i, read in reads:
                reader._found[i] = read.result()

    def _of_or_none(self, db: DbBranch) -> dict[str, str] | None:
        self.fetch([db])
        return self._found[db.id]


# Per backend (one a Context, so one a command): each database's URL, asked for once; every signature read
_URLS: weakref.WeakKeyDictionary[Backend, dict[str, str | None]] = weakref.WeakKeyDictionary()
_SIGNATURES: weakref.WeakKeyDictionary[Backend, Signatures] = weakref.WeakKeyDictionary()


def _urls_of(backend: Backend) -> dict[str, str | None]:
    return _URLS.setdefault(backend, {})


def signatures_of(backend: Backend) -> Signatures:
    """The whole signatures this command read (`diff --all` reads them beside its dumps, for its collisions)."""
    return _SIGNATURES.setdefault(backend, Signatures(backend))


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
    signed = [_db(w) for w in ready if forkpoint.signature_or_none(ctx, w) is not None]  # for the collisions
    dumps.fetch(signed, alongside=(signatures_of(backend),))
    dumps.fetch([_db(w) for w in ready] + [parent_side(ctx, state, w).db for w in ready if forks[w.name] is None])
    return [_since(ctx, state, w, forks[w.name], dumps) for w in ready]


def changed_since_fork(
    ctx: Context,
    state: State,
    workspaces: list[Workspace],
    *,
    known: Iterable[SchemaDiff] = (),
    among: frozenset[str] | None = None,
) -> dict[str, list[str]]:
    """The keys of the objects each workspace changed since its fork point, for collisions: its catalog signature
    against the one recorded at its fork point (one query a database, side by side); with `among`, only
    those keys, and only their kinds are read. A workspace without a recorded signature (an older treefork's,
    or a backend without URLs) falls back to its pg_dump diff: the one in `known` if the caller has it, else
    dumped here."""
    forks = {w.name: forkpoint.signature_or_none(ctx, w) for w in workspaces}
    prefixes = None if among is None else frozenset(map(catalog_signature.prefix_of, among))
    backend = ctx.backend(state)
    whole = prefixes is None or "" in prefixes
    signatures = signatures_of(backend) if whole else Signatures(backend, prefixes=prefixes)
    signatures.fetch([_db(w) for w in workspaces if forks[w.name] is not None])
    out: dict[str, list[str]] = {}
    for w in workspaces:
        fork = forks[w.name]
        now = signatures.signature_or_none(_db(w)) if fork is not None else None
        if fork is not None and now is not None:
            out[w.name] = catalog_signature.changed(fork, now, among=among)
    out.update({d.name: d.objects for d in known if d.name in forks and d.name not in out})
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
