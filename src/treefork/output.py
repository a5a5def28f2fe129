"""The one writer to stdout and stderr.

Rule: results go to stdout (a table, a URL, JSON, a path); progress and messages go to stderr.
Everything passes through redact(), so no secret reaches a terminal or a log.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

import functools
from typing import TYPE_CHECKING

from treefork.redact import redact

if TYPE_CHECKING:  # rich costs ~50 ms to import; plain messages do not need it
    from rich.console import Console


@functools.cache
def _console(*, stderr: bool) -> "Console":
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


_quiet = False


def be_quiet() -> None:
    """Drop progress lines from now on (`sync --quiet`); warnings and errors still show."""
    global _quiet
    _quiet = True


def info(message: str) -> None:
    """A progress line on stderr."""
    if not _quiet:
        _to_stderr(redact(message))


def warn(message: str) -> None:
    _to_stderr(f"warning: {redact(message)}")


def error(message: str) -> None:
    _to_stderr(f"treefork: error: {redact(message)}")


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def result(text: str) -> None:
    """A plain result line on stdout (a URL, a path)."""
    sys.stdout.write(redact(text) + "\n")
    sys.stdout.flush()


def raw_result(text: str) -> None:
    """A result that is meant to carry a secret (`treefork url`): only the user asked for it."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json(data: Any, *, redacted: bool = True) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    sys.stdout.write((redact(text) if redacted else text) + "\n")
    sys.stdout.flush()


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(_escape(redact("" if cell is None else str(cell))) for cell in row))
    _console(stderr=False).print(t)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
