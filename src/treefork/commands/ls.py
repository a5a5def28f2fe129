"""`treefork ls [NAME]`: every workspace of this repo, from any of its worktrees; NAME for the details.

The table fits the terminal: one line per workspace, long cells cut with an ellipsis, and never an error
message in a column (the status says `error`; `treefork ls NAME` shows the whole message).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from treefork import output, shapes
from treefork.context import Context
from treefork.workspace import views

# on a narrow terminal these go, in this order, before any value is cut (those the same on every row first)
DROPPABLE = ("collides", "disk", "age", "agent", "server", "+/-", "parent", "ports", "branch")
COLUMNS = ("name", "branch", "parent", "+/-", "tree", "collides", "database", "server", "ports", "agent", "disk", "age")


def run(name: str | None = None, *, as_json: bool) -> int:
    ctx = Context.open()
    state = ctx.state()
    state.expect_initialized()
    from treefork.workspace import reconcile

    listed = reconcile.listed_worktrees(ctx)
    if reconcile.reconcile_claude_removals(ctx, listed):  # Claude removes its worktrees with git hooks off
        state, listed = ctx.state(), reconcile.listed_worktrees(ctx)
    if name is not None and name != "root":
        state.expect_workspace(name)
    rows = views.rows(ctx, state, names=[name] if name else None, with_collisions=True, listed=listed)
    if as_json:
        records = [shapes.record("workspace", r) for r in rows]
        output.emit_json(records[0] if name else records)
    elif name:
        _details(rows[0])
    else:
        output.table(COLUMNS, (_cells(r) for r in rows), fit=True, droppable=DROPPABLE)
    return 0


def _cells(r: dict[str, Any]) -> list[str]:
    ahead_behind = "" if r["ahead"] is None else f"+{r['ahead']} -{r['behind']}"
    tree = "missing" if r["worktree"] != "present" else ("dirty" if r["dirty"] else "clean")
    if r["status"] != "ready":
        tree = "error" if r["error"] else r["status"]
    ports = " ".join(f"{v}={p}" for v, p in r["ports"].items())
    return [
        r["name"],
        r["branch"] or "(detached)",
        f"{r['forked_from']} (removed)" if r.get("forked_from") else r["parent"] or "",
        ahead_behind,
        tree,
        _collides(r),
        f"{r['db_branch'] or '-'} ({r['clone_method'] or r['backend']})",
        " ".join(x for x in (r["server"], r["server_state"]) if x),
        ports,
        r["agent"] or "",
        human_bytes(_disk(r)),
        _age(r),
    ]


def _collides(r: dict[str, Any]) -> str:
    """The other workspaces it collides with, `diff --all` says how: `b (migration), c (schema)`."""
    found = {(w, c["kind"]) for c in r.get("collisions") or [] for w in c["workspaces"] if w != r["name"]}
    return ", ".join(f"{w} ({kind})" for w, kind in sorted(found))


def _details(r: dict[str, Any]) -> None:
    for key in views.FIELDS:
        value = r.get(key)
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):  # collisions
            value = "; ".join(output.printable(str(c["message"])) for c in value) or "none"
        output.result(f"{key + ':':14} {'' if value is None else value}")


def _disk(r: dict[str, Any]) -> int | None:
    """What the workspace really costs on this disk: its worktree's files and its database's own extents."""
    parts = [r["disk_bytes"], r["db_disk_bytes"]]
    return None if all(p is None for p in parts) else sum(p or 0 for p in parts)


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def _age(r: dict[str, Any]) -> str:
    if r["created_at"] is None:
        return ""
    created = datetime.fromisoformat(r["created_at"]).timestamp()
    text = _span(int(time.time() - created))
    if r["expires_at"]:
        text += f", expires {r['expires_at']}"
    return text


def _span(seconds: int) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
