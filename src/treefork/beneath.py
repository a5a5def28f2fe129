"""Files written inside a directory and nowhere else, for paths a worktree's own content chooses
(`.worktreeinclude`, `worktree.symlinkDirectories`, a committed `.claude`): a branch can commit
`config -> /elsewhere`. Every path component is opened without following a link (O_NOFOLLOW) and the
file is made through its directory's descriptor, so no link, old or swapped in while we write, leads
out; `..` and absolute paths are refused before anything is opened."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from treefork.errors import FatalError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Outside(FatalError):
    """The path would leave the directory (a `..`, an absolute path, a symlink on the way)."""


def parts_of(rel: str) -> list[str]:
    """The components of a relative path; `..`, an absolute path or a NUL byte are refused."""
    if "\0" in rel or rel.startswith("/") or not rel.strip("/"):
        raise Outside(
            f"{rel!r} is not a relative path inside the worktree", hint="use a path relative to the repo root"
        )
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Outside(f"{rel!r} leads out of the worktree (..)", hint="use a path inside the repository")
    return parts


def open_dir(root: Path, parts: list[str], *, create: bool) -> int:
    """A descriptor for root/parts..., each component a real directory (made when `create`), never a link."""
    fd = os.open(root, DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            fd = _step(fd, part, root, parts[: i + 1], create=create)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _step(fd: int, part: str, root: Path, so_far: list[str], *, create: bool) -> int:
    try:
        sub = os.open(part, DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(part, 0o777, dir_fd=fd)
        except FileExistsError:
            pass  # made meanwhile (or a dangling link: the open below refuses it)
        sub = _open_or_refuse(fd, part, root, so_far)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise _refusal(root, so_far) from None
    os.close(fd)
    return sub


def _open_or_refuse(fd: int, part: str, root: Path, so_far: list[str]) -> int:
    try:
        return os.open(part, DIR_FLAGS, dir_fd=fd)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise _refusal(root, so_far) from None


def _refusal(root: Path, so_far: list[str]) -> Outside:
    where = root.joinpath(*so_far)
    return Outside(
        f"{where} is a symlink (or not a directory); treefork neither reads nor writes through it",
        hint=f"remove the link from the branch (git rm {'/'.join(so_far)}) if it was not meant to be there",
    )


def read_file(root: Path, rel: str) -> tuple[bytes, int]:
    """A regular file's bytes and permission bits, read without following a link at any component."""
    parts = parts_of(rel)
    dfd = open_dir(root, parts[:-1], create=False)
    try:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refusal(root, parts) from None
            raise
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not _is_regular(st.st_mode):
            raise Outside(f"{root / rel} is not a regular file", hint="list only files")
        return f.read(), st.st_mode & 0o777


def write_file(root: Path, rel: str, data: bytes, *, mode: int, replace: bool = True) -> bool:
    """root/rel with data, atomically (a temp file beside it, then a rename in the same directory), never
    through a link. Returns False when it exists and `replace` is off."""
    parts = parts_of(rel)
    dfd = open_dir(root, parts[:-1], create=True)
    try:
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not _is_regular(st.st_mode):
                raise _refusal(root, parts)
            if not replace:
                return False
        tmp = f".{parts[-1]}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)
                f.write(data)
            os.replace(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
    finally:
        os.close(dfd)
    return True


def symlink(root: Path, rel: str, target: Path) -> bool:
    """A link at root/rel (made inside root, its parents real directories) pointing at target. False when
    something is there already."""
    parts = parts_of(rel)
    dfd = open_dir(root, parts[:-1], create=True)
    try:
        os.symlink(target, parts[-1], target_is_directory=True, dir_fd=dfd)
    except FileExistsError:
        return False
    finally:
        os.close(dfd)
    return True


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)
