"""treefork's fix for a `CREATE EXTENSION` the workspace's role could not run, read from the cluster's server
log after a command treefork ran (a merge's migration, `treefork run`) failed: an untrusted extension (PostGIS,
dblink) needs treefork's admin (treefork.toml's `extensions`, then `treefork sync`); one the cluster's PostgreSQL
does not have needs other binaries (`postgres = ...`) or a server that has it.

Nothing of treefork's goes into the database for this (an event trigger would: `pg_dump --schema-only` writes it
into an app's committed schema file, docs/extensions.md), so PostgreSQL's own error is what the app sees, and
this line follows it. The log is written by the server from names an agent chose: they are matched, never run,
and printed escaped.
"""

from __future__ import annotations

import re
from pathlib import Path

from treefork.backends.local.binaries import Binaries, install_hint

_UNTRUSTED = re.compile(r'ERROR:\s+permission denied to create extension "((?:[^"]|"")+)"')
_MISSING = re.compile(r'ERROR:\s+extension "((?:[^"]|"")+)" is not available')
_LARGEST = 1 << 20  # what a command's run can have logged that is read


def explain(log: Path, since: int, bins: Binaries) -> str | None:
    """The fix for the last extension refused in log after offset since, or None."""
    try:
        with log.open("rb") as f:
            f.seek(max(since, f.seek(0, 2) - _LARGEST))
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    found: list[tuple[int, str, str]] = []
    for kind, pattern in (("untrusted", _UNTRUSTED), ("missing", _MISSING)):
        found += [(m.start(), kind, m.group(1).replace('""', '"')) for m in pattern.finditer(text)]
    if not found:
        return None
    _, kind, name = max(found)
    if kind == "untrusted":
        return (
            f'extension "{name}" needs a superuser, which the workspace\'s role is not: add it to treefork.toml '
            f'(extensions = ["{name}"]) and run `treefork sync`, which makes it as treefork\'s admin'
        )
    return (
        f'extension "{name}" is not in {bins.label()}: {install_hint(bins.major, [name])} and re-initialise '
        'with postgres = "<its major>" in treefork.toml, or branch on a server that has it (treefork init --server-url URL)'
    )
