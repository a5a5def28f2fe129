"""`treefork run NAME -- CMD...`: run a command in a workspace's worktree with its env file loaded."""

from __future__ import annotations

from treefork.context import Context
from treefork.workspace import lifecycle


def run(name: str, command: tuple[str, ...]) -> int:
    return lifecycle.run_in(Context.open(), name, command)
