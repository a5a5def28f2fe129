"""The treefork home is trusted only if no one else can write to it, as OpenSSH and pip check theirs.

A home another user can write to (`TREEFORK_HOME=/tmp/tf` in a shared CI box, say) would let them plant a
pristine cluster with a role of their own, which every new root would copy. So the home, its `clusters/` and
its `pristine/` must be the user's (or root's) and writable by no one else, and the files treefork reads back
from them (cluster records, ready.json) must be its own.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from treefork import paths, platform
from treefork.errors import FatalError

SUBDIRS = ("clusters", "pristine")


def open_home(home: Path) -> None:
    """The home made if missing (0700, or 0711 as root: the server user passes through it, without listing it),
    and checked: the user's (or root's), writable by no one else."""
    mode = 0o711 if paths.is_root() else 0o700
    if not home.exists():
        home.mkdir(parents=True, mode=mode, exist_ok=True)
        home.chmod(mode)  # whatever the umask
    check_home(home)
    if paths.is_root():
        check_reachable(home)
        home.chmod(mode)


def make_subdir(home: Path, name: str, *, mode: int) -> Path:
    path = home / name
    if not path.exists():
        path.mkdir(mode=mode, exist_ok=True)
        path.chmod(mode)  # whatever the umask
    check_dir(path)
    return path


def check_home(home: Path) -> None:
    """The home and those of its subdirectories that exist."""
    for path in (home, *(home / name for name in SUBDIRS)):
        if path is home or path.exists():
            check_dir(path)


def check_dir(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if not ours(st):
        raise FatalError(
            f"{path} belongs to {platform.user_name(st.st_uid)}, not to you: treefork will not trust the databases or "
            "passwords in it",
            hint="set TREEFORK_HOME to a directory of your own",
        )
    if st.st_mode & 0o022:
        raise FatalError(
            f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): anyone could plant a "
            "database or a password there",
            hint=f"chmod go-w {path}, or set TREEFORK_HOME to a directory of your own",
        )


def read_ours(path: Path) -> str:
    """A file's text, if the user (or root) owns it and no one else may write to it; else PermissionError
    (an OSError, as a missing file's)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        if not ours(st) or st.st_mode & 0o022 or not stat.S_ISREG(st.st_mode):
            raise PermissionError(f"{path} is not treefork's own file")
        return f.read()


def ours(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def check_reachable(home: Path) -> None:
    """As root, the server user must pass through every parent of home; we never loosen a user's directories."""
    for parent in home.parents:
        if not parent.stat().st_mode & 0o001:
            raise FatalError(
                f"the PostgreSQL server user cannot reach {home}: {parent} is closed to other users",
                hint="set TREEFORK_HOME to a directory under /var/lib or /srv (the default as root is /var/lib/treefork)",
            )
