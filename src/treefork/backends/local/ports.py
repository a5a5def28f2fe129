"""Loopback ports for the clusters: reserved machine-wide, probed by binding, and when one is taken, who holds it.

A cluster keeps its port for life (every env file of its workspace names it), also while it is stopped, when
nothing is bound. Binding alone cannot see the port of another home's stopped cluster (another user's, a
per-repo TREEFORK_HOME, a test session's), so every home also reserves its ports in one directory every user
of the machine shares, as /tmp is shared: a file per port, created with O_EXCL (the one atomic claim that works
across users and homes), naming the cluster directory that holds it. A reservation whose cluster directory is
provably gone is stale and taken over; one we cannot check (another user's private home) is respected.
The directory is sticky (1777), so no user can remove another's reservations. Someone who plants reservations
can only make ports look taken, as binding them would (the error then says how to find them).
"""

from __future__ import annotations

import functools
import os
import random
import socket
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from treefork import platform
from treefork.errors import BackendError, FatalError

HOST = "127.0.0.1"
HOST6 = "::1"
# Below Linux's ephemeral range (32768-60999), so an outgoing connection never takes a cluster's port, and
# below the range of the apps' own ports (treefork.workspace.ports, 20000-29999), which are recorded but not yet bound.
FIRST, LAST = 15432, 19999
RANGE_ENV = "TREEFORK_PORT_RANGE"  # FIRST-LAST, for a machine where 15432-19999 is someone else's
REGISTRY_ENV = "TREEFORK_PORT_REGISTRY"  # the shared reservations directory (a test session's own)
REGISTRY = "/var/tmp/treefork-ports"  # survives a reboot, unlike /tmp: stopped clusters keep their ports


def port_range() -> tuple[int, int]:
    spec = os.environ.get(RANGE_ENV)
    if not spec:
        return FIRST, LAST
    first, _, last = spec.partition("-")
    try:
        lo, hi = int(first), int(last)
    except ValueError:
        lo, hi = 0, -1
    if not 1024 <= lo <= hi <= 65535:
        raise FatalError(
            f"{RANGE_ENV}={spec!r} is not a port range", hint=f"write it FIRST-LAST, e.g. {RANGE_ENV}={FIRST}-{LAST}"
        )
    return lo, hi


@functools.cache
def has_ipv6_loopback() -> bool:
    """The machine has ::1, where libpq tries `localhost` first: clusters listen there too, so nobody else can."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind((HOST6, 0))
    except OSError:
        return False
    return True


def loopbacks() -> list[str]:
    return [HOST, HOST6] if has_ipv6_loopback() else [HOST]


def free(port: int) -> bool:
    """Nothing listens on port, on 127.0.0.1 nor on ::1."""
    for host in loopbacks():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # as PostgreSQL binds: connections in TIME_WAIT after a stop do not make the port taken
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def pick(taken: Iterable[int], *, owner: Path) -> int:
    """A free port no recorded cluster of this home and no reservation of another home uses, reserved for owner
    (a cluster directory). Random, so two homes rarely try the same one; every port is tried before giving up."""
    first, last = port_range()
    used = set(taken)
    for port in _candidates(first, last):
        if port not in used and free(port) and reserve(port, owner):
            return port
    raise BackendError(
        f"no free port for a new PostgreSQL cluster between {first} and {last}: other programs, or other treefork "
        "homes on this machine, hold all of them",
        hint=f"`ss -ltnp` names the programs listening there; stop those you do not need, or set {RANGE_ENV}=FIRST-LAST "
        "to a free range",
    )


def _candidates(first: int, last: int) -> Iterator[int]:
    """A few random draws (in a range of thousands, the first is almost always free: one bind check, one
    reservation), then every port in a random order. Shuffling the whole range up front cost a millisecond a
    fork."""
    for _ in range(DRAWS):
        yield random.randint(first, last)
    everything = list(range(first, last + 1))
    random.shuffle(everything)
    yield from everything


DRAWS = 16


# ---- the machine-wide reservations -----------------------------------------------------------------
def registry_dir() -> Path | None:
    """The shared directory, made if missing (1777); None where it cannot be used (then binding alone decides)."""
    path = Path(os.environ.get(REGISTRY_ENV) or REGISTRY)
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o1777)  # after mkdir: the umask does not apply to chmod
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None  # a symlink or a file planted there: never followed
    return path


def reserve(port: int, owner: Path) -> bool:
    """Claim port for owner: True if it is owner's now (newly, or already), False if another cluster holds it."""
    registry = registry_dir()
    if registry is None:
        return True
    entry = registry / str(port)
    for _ in range(2):
        try:
            fd = os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            holder = _holder_of(entry)
            if holder == str(owner):
                return True
            if holder is None or not _gone(holder):
                return False
            try:
                entry.unlink()  # stale: its cluster directory is gone
            except OSError:
                return False  # another user's, in a directory we do not own: respected
            continue
        except OSError:
            return True  # a registry we cannot write to: binding alone decides
        with os.fdopen(fd, "w") as f:
            f.write(f"{owner}\n")
        return True
    return False


def release(port: int, owner: Path) -> None:
    registry = registry_dir()
    if registry is not None and _holder_of(registry / str(port)) == str(owner):
        (registry / str(port)).unlink(missing_ok=True)


def _holder_of(entry: Path) -> str | None:
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        return f.read(4096).strip() or None


def _gone(cluster_dir: str) -> bool:
    """Provably gone: its parent is there and it is not. A directory we may not look into is not gone."""
    try:
        os.lstat(cluster_dir)
    except FileNotFoundError:
        return os.path.isdir(os.path.dirname(cluster_dir))
    except OSError:
        return False
    return False


# ---- who holds a port ----------------------------------------------------------------------------
def holder_or_none(port: int) -> str | None:
    """None when port is free; else who listens on it, as far as the platform lets us see (/proc on Linux)."""
    if free(port):
        return None
    pid = platform.socket_holder_or_none(platform.listening_sockets(port))
    if pid is None:
        return "another program (one this user cannot see; `ss -ltnp` as root names it)"
    return f"pid {pid} ({platform.process_name(pid) or '?'})"


def listens_everywhere(pid: int, port: int) -> bool | None:
    """Whether process pid holds port's listening sockets on every loopback (a squatter that bound ::1 first
    leaves PostgreSQL on 127.0.0.1 alone: it only warns). None where the platform cannot tell."""
    sockets = platform.listening_sockets(port)
    if not sockets:
        return None
    mine = platform.process_sockets_or_none(pid)
    if mine is None:
        return None
    return sockets <= mine and len(sockets) >= len(loopbacks())
