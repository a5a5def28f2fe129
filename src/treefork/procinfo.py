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


def state(pid: int) -> str | None:
    """The process's state letter from /proc/<pid>/stat: R, S, D, Z (a zombie), T (stopped: SIGSTOP), ..."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def cwd_or_none(pid: int) -> str | None:
    """The process's working directory; None if it has none (a zombie) or we may not see it (another user's)."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def can_inspect() -> bool:
    """/proc tells us about processes (Linux); elsewhere a pid's liveness is all we know."""
    return os.path.isdir("/proc/self/fd")


def pids_in(directory: str) -> list[int]:
    """Every process whose working directory is `directory` (a PostgreSQL cluster's processes sit in its data
    directory, the postmaster and every backend alike). Only the processes we may inspect."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and cwd_or_none(int(name)) == directory:
            found.append(int(name))
    return found


def same_process(pid: int | None, started: int | None) -> bool:
    """pid still names the process that had it when `started` (start_time) was read: alive, and not reused."""
    if not pid:
        return False
    from treefork.state import pid_alive

    if not pid_alive(pid) or state(pid) == "Z":
        return False
    return started is None or start_time(pid) in (None, started)


def cmdline_or_none(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0") if raw else None


def exe_path(pid: int) -> str | None:
    """The executable a process runs, None where /proc cannot say."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
