"""`treefork url [NAME]`: print a workspace's database URL (the current worktree's by default)."""

from __future__ import annotations

from treefork import output, shapes
from treefork.context import Context
from treefork.errors import FatalError
from treefork.state import READY
from treefork.workspace import reconcile


def run(name: str | None, *, direct: bool, as_json: bool) -> int:
    ctx = Context.open()
    state = ctx.state()
    backend = ctx.backend(state)
    if name in (None, "root") and (name == "root" or ctx.repo.toplevel.resolve() == ctx.repo.main_root.resolve()):
        db, label = backend.root(), "root"
    else:
        ws = state.expect_workspace(name) if name else reconcile.workspace_at_or_none(ctx, state, ctx.repo.toplevel)
        if ws is None:
            raise FatalError(
                f"{ctx.repo.toplevel} is not a treefork workspace",
                hint="pass a name: treefork url NAME (treefork ls lists them)",
            )
        recorded = ws.db_ref_or_none()
        if ws.status != READY or recorded is None:
            raise FatalError(
                f"workspace {ws.name!r} has no database yet ({ws.status})",
                hint=f"run `treefork new {ws.name}` to finish it",
            )
        db, label = recorded, ws.name
    conn = backend.connection(db)
    url = (conn.direct_url or conn.url) if direct else conn.url
    if as_json:
        record = shapes.record("url", {"name": label, "url": conn.url, "direct_url": conn.direct_url})
        output.emit_json(record, redacted=False)
    else:
        output.raw_result(url)
    return 0
