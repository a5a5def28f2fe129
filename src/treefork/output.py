"""The one writer to stdout and stderr.

Rule: results go to stdout (a table, a URL, JSON, a path); progress and messages go to stderr.
Everything passes through redact(), so no secret reaches a terminal or a log.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from treefork.redact import redact

if TYPE_CHECKING:  # rich costs ~50 ms to import; plain messages do not need it
    from rich.console import Console


@functools.cache
def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


_closed_stdout = False


def begin() -> None:
    """A command starts: no state left from an earlier one in this process (`cli.main` may run many)."""
    global _quiet
    _quiet = False
    _console.cache_clear()  # rich's consoles look at their terminal once
    reopen_closed_std_fds()


def reopen_closed_std_fds() -> None:
    """A closed stdin, stdout or stderr (`treefork ls >&-`) is reopened on /dev/null, so the next file
    treefork opens cannot take its number (nor a child's output land in it). A result then has nowhere to
    go, and saying so is an error."""
    import os

    global _closed_stdout
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if fd in closed or getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - lives as long as the process
    _closed_stdout = 1 in closed


def _expect_stdout() -> None:
    if _closed_stdout:
        from treefork.errors import FatalError

        raise FatalError(
            "cannot print the result: standard output is closed",
            hint="do not close it (>&-); send it to a file or to /dev/null instead",
        )


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
    _expect_stdout()
    sys.stdout.write(redact(text) + "\n")
    sys.stdout.flush()


def raw_result(text: str) -> None:
    """A result that is meant to carry a secret (`treefork url`): only the user asked for it."""
    _expect_stdout()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def printable(text: str) -> str:
    """Text that cannot drive a terminal: every control character but newline and tab shown as an escape
    (`\\x1b`), so a name an agent chose (a table, a function) cannot retitle, clear or recolour the screen."""
    return "".join(_visible(c) for c in text)


def _visible(c: str) -> str:
    o = ord(c)
    if c in "\n\t" or (32 <= o < 127) or o > 159:
        return c
    return f"\\x{o:02x}"


def emit_json(data: Any, *, redacted: bool = True) -> None:
    _expect_stdout()
    text = json.dumps(data, indent=2, default=str)  # records keep their declared order (shapes.py)
    sys.stdout.write((redact(text) if redacted else text) + "\n")
    sys.stdout.flush()


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    fit: bool = False,
    droppable: Sequence[str] = (),
) -> None:
    """fit: one line per row, cells cut with an ellipsis to the terminal's width, never wrapped; on a
    terminal too narrow even for that, the `droppable` columns go, in that order."""
    _expect_stdout()
    from rich.table import Table

    t = Table(title=title, show_edge=False, header_style="bold")
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if fit and sys.stdout.isatty():
        columns, cells = _drop_columns(list(columns), cells, list(droppable))
        cells = _shared_prefixes_cut(columns, cells)
    widths = _fitted_widths(columns, cells, cut=sys.stdout.isatty()) if fit else [None] * len(columns)
    for col, width in zip(columns, widths, strict=True):
        t.add_column(col, no_wrap=fit, overflow="ellipsis" if fit else "fold", width=width)
    for row in cells:
        t.add_row(*(_escape(redact("" if cell is None else str(cell))) for cell in row))
    if fit and not sys.stdout.isatty():  # a pipe or a file: whole cells, one line per row
        from rich.console import Console

        Console(width=sum(widths) + 3 * len(columns), highlight=False, soft_wrap=True).print(t)  # type: ignore[arg-type]
        return
    _console(stderr=False).print(t)


def _drop_columns(columns: list[str], rows: list[list[str]], droppable: list[str]) -> tuple[list[str], list[list[str]]]:
    """Columns go before any value is cut: first the droppable ones that say the same on every row (nothing to
    tell the rows apart by), then the others in the order given, while the whole table is wider than the room."""
    room = _console(stderr=False).width
    same = [
        c for c in droppable if c in columns and len(rows) > 1 and len({r[columns.index(c)] for r in rows} - {""}) <= 1
    ]
    order = same + [c for c in droppable if c not in same]

    def width() -> int:
        return sum(max([len(c), *(len(r[i]) for r in rows)]) + 3 for i, c in enumerate(columns)) + 2

    while order and width() > room:
        gone = columns.index(order.pop(0))
        columns = columns[:gone] + columns[gone + 1 :]
        rows = [r[:gone] + r[gone + 1 :] for r in rows]
    return columns, rows


def _shared_prefixes_cut(columns: Sequence[str], rows: list[list[str]]) -> list[list[str]]:
    """When the table is still too wide, a column whose values all begin alike (`tf_5b3093_feature_…`,
    `tf_5b3093_billing_…`) loses that beginning, the widest first: cut at the end they would all read the same."""
    room = _console(stderr=False).width - (3 * len(columns) + 2)
    while sum(max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)) > room:
        shared = [(len(os.path.commonprefix([r[i] for r in rows])), i) for i in range(1, len(columns))]
        best, i = max(shared, default=(0, 0))
        if len(rows) < 2 or best < 4:
            break
        rows = [[*r[:i], "…" + r[i][best:], *r[i + 1 :]] for r in rows]
    return rows


def _fitted_widths(columns: Sequence[str], rows: list[list[str]], *, cut: bool) -> list[int]:
    """Natural widths, the widest cut first (one character at a time, never below 6) until the table fits; the
    first column (the name each row is known by) is cut last."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    if not cut:
        return widths
    room = _console(stderr=False).width - (3 * len(columns) + 2)  # padding and separators
    while sum(widths) > room and max(widths) > 6:
        rest = widths[1:]
        i = 1 + rest.index(max(rest)) if rest and max(rest) > 6 else 0
        widths[i] -= 1
    return widths


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
