"""`treefork merge NAME`: merge a workspace into its parent, migrate the parent's database, remove it."""

from __future__ import annotations

from treefork import output, shapes
from treefork.context import Context
from treefork.workspace import merge


def run(name: str, *, keep: bool, abort: bool, as_json: bool) -> int:
    ctx = Context.open()
    if abort:
        return _abort(ctx, name, as_json=as_json)
    result = merge.merge(ctx, name, keep=keep)
    if as_json:
        output.emit_json(result.to_json())
        return 0
    done = f"merged {name} into {result.parent_branch} ({result.parent}): {result.head_before[:12]}..{result.head_after[:12]}"
    output.info(done + (", parent database migrated" if result.migrated else ""))
    if result.removed:
        output.info(f"removed workspace {name}")
    else:
        output.info(f"kept workspace {name}; `treefork rm {name}` when done")
    return 0


def _abort(ctx: Context, name: str, *, as_json: bool) -> int:
    outcome = merge.abort(ctx, name)
    if as_json:
        output.emit_json(shapes.record("merge abort", {"name": name, "outcome": outcome}))
    elif outcome == "undone":
        output.info(f"aborted the merge of {name}: the parent's code and database are as they were before it")
    else:
        output.info(f"the merge of {name} had migrated the parent and could not be undone; it was completed")
    return 0
