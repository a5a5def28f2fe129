"""Each workspace's schema as it was forked: a normalised `pg_dump --schema-only` of its database taken right
after the fork (and again after `reset`, which re-forks it), so `diff` shows what the workspace itself changed.

The dumps live beside the registry, in `<git common dir>/treefork/forkpoints/`, one file a workspace: shared
by every worktree like the registry, outside every worktree (an agent's `git add -A` never sees them), and not
in registry.json itself, which every command and git hook reads whole and which a dump would make megabytes.
Each file names the database it was taken from, so a file left by an earlier workspace of the same name
is never taken for this one's.

Beside each dump, `<digest>.signature.json` keeps the fork point's catalog signature
(backends/catalog_signature.py: each object's key and the md5 of its definition), taken by the same thread just
before the dump: what collisions compare, with one catalog query a workspace instead of a pg_dump. A workspace
made before signatures were kept has none, and its collisions come from the dumps as before.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from treefork import output
from treefork.backends import catalog_signature
from treefork.backends import schema_diff as schemas
from treefork.backends.base import DbBranch
from treefork.background import Background
from treefork.context import Context
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.state import Workspace

_MARK = "-- treefork fork point: "


def path_of(ctx: Context, name: str) -> Path:
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]  # any workspace name, any length
    return ctx.registry.dir / "forkpoints" / f"{digest}.sql"


def signature_path_of(ctx: Context, name: str) -> Path:
    return path_of(ctx, name).with_suffix(".signature.json")


def save(ctx: Context, name: str, db: DbBranch, schema: str) -> None:
    header = json.dumps(_header(name, db), sort_keys=True)
    where = path_of(ctx, name)
    where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(where, _MARK + header + "\n" + schema, mode=0o600)


def save_signature(ctx: Context, name: str, db: DbBranch, signature: dict[str, str]) -> None:
    where = signature_path_of(ctx, name)
    where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(where, json.dumps({**_header(name, db), "objects": signature}, sort_keys=True), mode=0o600)


def _header(name: str, db: DbBranch) -> dict[str, object]:
    return {"workspace": name, "db_id": db.id, "at": int(time.time())}


def record(ctx: Context, name: str, db: DbBranch) -> None:
    """Take and save name's fork point. A failure only costs the three-way diff (it falls back to the parent's
    current schema), so it warns and never fails the command that forked."""
    recording(ctx, name, db).result()


def recording(ctx: Context, name: str, db: DbBranch) -> Background[None]:
    """record(), its dump running in a thread while the caller goes on (`new` writes the env file meanwhile).
    The backend is asked for the URL here, in the caller's thread."""
    url: str | None = None
    problem: FatalError | None = None
    try:
        url = ctx.backend().schema_url_or_none(db)
    except FatalError as e:
        problem = e

    def dump_and_save() -> None:
        try:
            signature_path_of(ctx, name).unlink(missing_ok=True)  # a reset's new fork point replaces it, or none does
            if problem is not None:
                raise problem
            if url is not None:
                _sign(ctx, name, db, url)
                save(ctx, name, db, schemas.normalise(schemas.dump(url)))
        except (FatalError, OSError) as e:
            output.warn(f"could not record {name}'s fork point ({e}); `treefork diff {name}` compares with its parent")

    return Background(dump_and_save, name="fork-point")


def _sign(ctx: Context, name: str, db: DbBranch, url: str) -> None:
    """The fork point's catalog signature, if the server can give one (a server that refuses the query, e.g. an
    older major version, leaves none: collisions then come from the dumps, as before)."""
    try:
        signature = catalog_signature.of_url(url)
    except FatalError:
        return
    save_signature(ctx, name, db, signature)


def load_or_none(ctx: Context, ws: Workspace) -> dict[str, str] | None:
    """ws's fork-point schema as `schema_diff.objects`, or None: recorded before treefork kept fork points,
    by a backend without dumps, or for another database of that name."""
    try:
        text = path_of(ctx, ws.name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first, _, schema = text.partition("\n")
    try:
        header = json.loads(first.removeprefix(_MARK)) if first.startswith(_MARK) else {}
    except ValueError:
        return None
    db = ws.db_ref_or_none()
    if db is None or header.get("workspace") != ws.name or header.get("db_id") != db.id:
        return None
    return schemas.objects(schema)


def signature_or_none(ctx: Context, ws: Workspace) -> dict[str, str] | None:
    """ws's fork-point catalog signature ({object key: md5}), or None: recorded before treefork kept them, by
    a backend without a URL to read, or for another database of that name."""
    try:
        data = json.loads(signature_path_of(ctx, ws.name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    db = ws.db_ref_or_none()
    objects = data.get("objects") if isinstance(data, dict) else None
    if db is None or data.get("workspace") != ws.name or data.get("db_id") != db.id or not isinstance(objects, dict):
        return None
    return {str(k): str(v) for k, v in objects.items()}


def forget(ctx: Context, name: str) -> None:
    path_of(ctx, name).unlink(missing_ok=True)
    signature_path_of(ctx, name).unlink(missing_ok=True)
