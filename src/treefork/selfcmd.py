"""How treefork starts itself (git hooks, agents' hooks, tmux panes, the systemd unit): an interpreter that
imports nothing from the working directory, which is a worktree an agent or a checked-out branch wrote.

`python -m treefork` puts the working directory first on `sys.path`, so a `treefork/` package committed on a
branch, or left untracked by an agent, would run instead of treefork. `-P` (Python 3.11+, as treefork requires)
leaves the working directory out; the user's own environment (PYTHONPATH, the user's site-packages) still
counts, as it does for every other program they run.
"""

from __future__ import annotations

import shlex
import sys

FLAGS = ("-P",)


def argv(*args: str, python: str | None = None) -> tuple[str, ...]:
    """The argument list that runs `treefork ARGS` with this (or the given) interpreter."""
    return (python or sys.executable, *FLAGS, "-m", "treefork", *args)


def shell(*args: str, python: str | None = None) -> str:
    """The same as one shell word list; the interpreter quoted."""
    return " ".join(shlex.quote(a) for a in argv(*args, python=python))


def shell_call(python_var: str) -> str:
    """`"$VAR" -P -m treefork`, for the hook scripts, whose interpreter is a shell variable."""
    return f'"${python_var}" {" ".join(FLAGS)} -m treefork'
