"""Round 3's finding 42: docs/lifecycle.md said "not yet" of `merge` with `migrate` and of `reset` on the local
backend long after both worked. Its table of what each backend does is now checked against the backends
themselves: the Protocol's members each class defines and the flags it sets. A backend that gains (or
loses) a capability fails this test until the table says so; `python tests/test_backend_docs.py` prints it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from treefork.backends.local.clusters import ClusterBackend
from treefork.backends.local.template import TemplateBackend
from treefork.backends.neon import NeonBackend

DOC = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"
BEGIN, END = "<!-- BEGIN backend capabilities (tests/test_backend_docs.py) -->", "<!-- END backend capabilities -->"
COLUMNS = {"local": ClusterBackend, "local, `--server-url`": TemplateBackend, "neon": NeonBackend}


def defines(*members: str) -> Callable[[type], str]:
    """yes when the class defines every member itself (the Protocol only declares them), else `not yet`."""
    return lambda cls: "yes" if all(callable(getattr(cls, m, None)) for m in members) else "**not yet**"


def flag(name: str, *, true: str, false: str) -> Callable[[type], str]:
    return lambda cls: true if getattr(cls, name) else false


ROWS: dict[str, Callable[[type], str]] = {
    "`new`, `new --from` (stacked)": defines("create_branch", "find_branch_or_none"),
    "`merge` with `migrate` (a snapshot of the parent, put back if the migration fails)": defines(
        "snapshot", "find_snapshot_or_none", "restore", "drop_snapshot"
    ),
    "`reset`, `reset --from`": defines("reset_branch"),
    "`diff`": defines("schema_diff", "schema_url_or_none"),
    "`new --ttl` (branches that expire)": flag("supports_ttl", true="yes", false="no"),
    "`rm` of a workspace others were forked from": flag(
        "leaf_delete_only", true="refused until its children are removed (Neon deletes leaves only)", false="yes"
    ),
    "`doctor` connects to each env file's URL": flag(
        "wakes_on_connect", true="no (a connection wakes a compute)", false="yes"
    ),
}


def table() -> str:
    lines = ["| | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    lines += [f"| {row} | " + " | ".join(cell(c) for c in COLUMNS.values()) + " |" for row, cell in ROWS.items()]
    return "\n".join(lines)


def documented() -> str:
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()


def test_finding_42_the_backend_table_in_lifecycle_md_says_what_each_backend_does() -> None:
    assert documented() == table(), f"docs/lifecycle.md's backend table is stale; it should read:\n{table()}"


def test_finding_42_no_doc_says_not_yet_of_what_every_backend_does() -> None:
    """Prose, not only the table: a `not yet` next to a command every backend supports."""
    every = [row for row, cell in ROWS.items() if all(cell(c) == "yes" for c in COLUMNS.values())]
    commands = {c for row in every for c in re.findall(r"`(\w+)", row)}
    for doc in DOC.parent.glob("*.md"):
        for line in doc.read_text().splitlines():
            if re.search(r"\*\*not yet\*\*|\bnot yet\b[^`]", line, re.IGNORECASE):
                said = {c for c in commands if re.search(rf"`(treefork )?{c}\b|\b{c}\b(?! \w)", line)}
                assert not said, f"{doc.name}: {line.strip()!r} says `not yet` of {said}, which every backend does"


if __name__ == "__main__":
    print(table())
