"""Loopback ports for the clusters: probed by binding, and when one is taken, who holds it."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterable
from pathlib import Path

HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), so an outgoing connection never takes a cluster's port, and
# below the range of the apps' own ports (treefork.workspace.ports, 20000-29999), which are recorded but not yet bound.
FIRST, LAST = 15432, 19999


def free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as PostgreSQL binds: connections in TIME_WAIT after a stop do not make the port taken
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick(taken: Iterable[int]) -> int:
    """A free port no recorded cluster uses. Random, so two homes (two users, test sessions) rarely meet;
    the caller holds the machine-wide lock and retries with another port if the start loses a race."""
    used = set(taken)
    for _ in range(2000):
        port = random.randint(FIRST, LAST)
        if port not in used and free(port):
            return port
    raise OSError(f"no free loopback port between {FIRST} and {LAST}")


def holder_or_none(port: int) -> str | None:
    """None when port is free; else who listens on it, as far as /proc lets us see."""
    if free(port):
        return None
    inode = _listening_inode(port)
    pid = _pid_of_socket(inode) if inode else None
    if pid is None:
        return "another program (one this user cannot see; `ss -ltnp` as root names it)"
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        name = "?"
    return f"pid {pid} ({name})"


def _listening_inode(port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return fields[9]
    return None


def _pid_of_socket(inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
            except OSError:
                continue
    return None
