"""What treefork concludes about processes from what the platform tells (platform.process_*: /proc on Linux):
our ancestors, the agent that ran a hook, a data directory's processes, whether a recorded pid is still the same
process. Where the platform tells nothing, the answers are empty, and a live pid counts as the same process."""

from __future__ import annotations

import os

from treefork import platform

SHELLS = {"sh", "bash", "dash", "zsh", "env", "timeout"}


def ancestors(depth: int) -> list[int]:
    pids, pid = [], os.getppid()
    for _ in range(depth):
        if pid <= 1:
            break
        pids.append(pid)
        pid = platform.process_parent(pid)
    return pids


def agent_pid() -> int | None:
    """The process that ran this hook: `CLAUDE_PID` when the agent gives it (Claude Code 2.1.332 does), else
    our first ancestor past any shell in between (Claude runs hooks through `sh -c`)."""
    given = os.environ.get("CLAUDE_PID", "")
    if given.isdigit() and int(given) > 1:
        return int(given)
    for pid in ancestors(4):
        name = platform.process_name(pid)
        if name and name not in SHELLS:
            return pid
    return None


def pids_in(directory: str) -> list[int]:
    """Every process whose working directory is `directory` (a PostgreSQL cluster's processes sit in its data
    directory, the postmaster and every backend alike). Only the processes we may inspect."""
    return [pid for pid in platform.process_ids() if platform.process_cwd_or_none(pid) == directory]


def same_process(pid: int | None, started: int | None) -> bool:
    """pid still names the process that had it when `started` (platform.process_start_time) was read: alive,
    and not reused."""
    if not pid:
        return False
    if not platform.process_alive(pid) or platform.process_state(pid) == "Z":
        return False
    return started is None or platform.process_start_time(pid) in (None, started)
