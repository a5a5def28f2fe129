"""Our ancestor processes, read from /proc where the OS has it (Linux); empty answers elsewhere."""

from __future__ import annotations

import os

SHELLS = {"sh", "bash", "dash", "zsh", "env", "timeout"}


def ancestors(depth: int) -> list[int]:
    pids, pid = [], os.getppid()
    for _ in range(depth):
        if pid <= 1:
            break
        pids.append(pid)
        pid = ppid_of(pid)
    return pids


def ppid_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def agent_pid() -> int | None:
    """The process that ran this hook: `CLAUDE_PID` when the agent gives it (Claude Code 2.1.332 does), else
    our first ancestor past any shell in between (Claude runs hooks through `sh -c`)."""
    given = os.environ.get("CLAUDE_PID", "")
    if given.isdigit() and int(given) > 1:
        return int(given)
    for pid in ancestors(4):
        name = comm(pid)
        if name and name not in SHELLS:
            return pid
    return None


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a live pid from a reused one)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def exe_path(pid: int) -> str | None:
    """The executable a process runs, None where /proc cannot say."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
