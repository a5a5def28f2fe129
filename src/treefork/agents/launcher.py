"""The one script every session-start integration runs: `<git common dir>/treefork/agent-hook`.

It is untracked (inside .git) and records the interpreter that installed it, so it works with no treefork
on the agent's PATH. Agent settings call it through COMMAND, which holds no machine path: it finds the
script from whatever worktree the agent starts in, and does nothing in a repository without it.
It runs `treefork sync --quiet` with stdout sent to stderr (agents parse a hook's stdout as JSON); with
`teardown`, `treefork rm .` (the setup-file integrations' cleanup, agents/setup_files.py).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from treefork import selfcmd
from treefork.fsutil import atomic_write_text
from treefork.git import Repo

MARKER = "# treefork-agent-hook v1"
COMMAND = 'h="$(git rev-parse --git-common-dir 2>/dev/null)/treefork/agent-hook"; [ ! -x "$h" ] || "$h"'

SCRIPT = """\
#!/bin/sh
{marker}: written by `treefork install --<agent>`; agents' session-start hooks run it.
INSTALL_PYTHON={python}
# `agent-hook teardown` (a tool's cleanup script): remove this worktree's workspace, losing nothing
if [ "$1" = teardown ]; then set -- rm .; else set -- sync --quiet; fi
trap '' INT  # Python starts with ^C ignored, until treefork's own quiet handler is set
if [ -x "$INSTALL_PYTHON" ]; then
  {call} "$@" </dev/null >&2 || exit 1
elif command -v treefork >/dev/null 2>&1; then
  treefork "$@" </dev/null >&2 || exit 1
else
  echo "treefork: $INSTALL_PYTHON is gone and treefork is not on PATH; run \\`treefork install\\` again" >&2
  exit 1
fi
"""


def path(repo: Repo) -> Path:
    return repo.common_dir / "treefork" / "agent-hook"


def text(python: str | None = None) -> str:
    return SCRIPT.format(
        marker=MARKER, python=shlex.quote(python or sys.executable), call=selfcmd.shell_call("INSTALL_PYTHON")
    )


def write(repo: Repo) -> bool:
    target = path(repo)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(target, text(), mode=0o755)


def current(repo: Repo) -> bool:
    target = path(repo)
    try:
        return target.read_text(encoding="utf-8") == text() and os.access(target, os.X_OK)
    except OSError:
        return False


def is_ours(command: object) -> bool:
    return isinstance(command, str) and "/treefork/agent-hook" in command
