"""How treefork starts itself (git hooks, agents' hooks, tmux panes, the systemd unit): an interpreter that
imports nothing from the working directory, which is a worktree an agent or a checked-out branch wrote.

`python -m treefork` puts the working directory first on `sys.path`, so a `treefork/` package committed on a
branch, or left untracked by an agent, would run instead of treefork. `-I` (isolated mode) leaves out the working
directory, PYTHONPATH (whose relative entries are relative to it) and the user's site-packages; where treefork
itself lives in the user's site-packages (`pip install --user`), `-P` leaves out the working directory alone.
"""

from __future__ import annotations

import shlex
import site
import sys
from pathlib import Path


def flags() -> tuple[str, ...]:
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    here = Path(__file__).resolve()
    if user_site and here.is_relative_to(Path(user_site).resolve()):
        return ("-P",)
    return ("-I",)


def argv(*args: str, python: str | None = None) -> tuple[str, ...]:
    """The argument list that runs `treefork ARGS` with this (or the given) interpreter."""
    return (python or sys.executable, *flags(), "-m", "treefork", *args)


def shell(*args: str, python: str | None = None) -> str:
    """The same as one shell word list; the interpreter quoted."""
    return " ".join(shlex.quote(a) for a in argv(*args, python=python))


def shell_call(python_var: str) -> str:
    """`"$VAR" -I -m treefork`, for the hook scripts, whose interpreter is a shell variable."""
    return f'"${python_var}" {" ".join(flags())} -m treefork'
