"""The one writer to stdout and stderr.

Rule: results go to stdout (a table, a URL, JSON, a path); progress and messages go to stderr.
Everything passes through redact(), so no secret reaches a terminal or a log.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.table import Table

from treefork.redact import redact

_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False, soft_wrap=True)


def info(message: str) -> None:
    """A progress line on stderr."""
    _err.print(redact(message), markup=False)


def warn(message: str) -> None:
    _err.print(f"[yellow]warning:[/yellow] {_escape(redact(message))}")


def error(message: str) -> None:
    _err.print(f"[bold red]treefork: error:[/bold red] {_escape(redact(message))}")


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
    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(_escape(redact("" if cell is None else str(cell))) for cell in row))
    _out.print(t)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
