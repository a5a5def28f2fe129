"""Every OS-specific call treefork makes, each with a portable fallback: reflinks, in-kernel copies, extent maps,
syncfs, file locks, what /proc says about processes and sockets, and user lookups. TREEFORK_PORTABLE=1 makes
Linux take the fallbacks too, so the suite runs them; a port to another OS fills in this module alone.

Linux takes the native path. The fallbacks are POSIX, what macOS offers without its own calls: a plain copy,
every allocated block counted as the file's own, fsync file by file, POSIX record locks, and no process
information beyond a pid's liveness (callers then answer conservatively: nothing is taken for gone).
"""

from __future__ import annotations

import errno
import os
import sys

PORTABLE_ENV = "TREEFORK_PORTABLE"  # 1: take every portable fallback, on Linux too (the suite's check of them)


def native() -> bool:
    """Linux's own calls apply: on Linux, unless TREEFORK_PORTABLE asks for the fallbacks. Read on every call,
    so a test can switch it with the environment."""
    return sys.platform == "linux" and os.environ.get(PORTABLE_ENV, "") in ("", "0")


# ---- files ---------------------------------------------------------------------------------------------------
FICLONE = 0x40049409
# What a filesystem or kernel without the call answers: the caller takes the slower way instead.
UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS)


def clone_file(src_fd: int, dst_fd: int) -> bool:
    """Make dst a reflink of src (XFS, btrfs: shared blocks, copied on write). False where the filesystem or
    the OS cannot (then copy_range). macOS: clonefile(2) works on paths, not descriptors."""
    if not native():
        return False
    import fcntl

    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as e:
        if e.errno not in UNSUPPORTED:
            raise
        return False
    return True


def copy_range(src_fd: int, dst_fd: int, count: int) -> int:
    """Copy up to count bytes from src's offset to dst's, advancing both; 0 at src's end. copy_file_range (in
    the kernel) on Linux; else, or where it cannot (another filesystem), read and write."""
    if native():
        try:
            return os.copy_file_range(src_fd, dst_fd, count)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            return _read_write(src_fd, dst_fd, None)
    return _read_write(src_fd, dst_fd, count)


def _read_write(src_fd: int, dst_fd: int, count: int | None) -> int:
    """Up to count bytes (None: to the end), a MiB at a time."""
    total = 0
    while count is None or total < count:
        chunk = os.read(src_fd, 1 << 20 if count is None else min(1 << 20, count - total))
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view) :]
        total += len(chunk)
    return total


FS_IOC_FIEMAP = 0xC020660B
EXTENT_LAST, EXTENT_SHARED = 0x1, 0x2000
FIEMAP_BATCH = 128


def unshared_extents(fd: int) -> int | None:
    """The bytes of the file's extents that no other file shares (a reflinked copy's own writes); None where
    the filesystem or the OS cannot map extents (then every allocated block is the file's own). macOS: APFS
    clones share blocks too, but no call lists which."""
    if not native():
        return None
    try:
        return _fiemap_unshared(fd)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
            raise
        return None


def _fiemap_unshared(fd: int) -> int:
    import fcntl
    import struct

    header = struct.Struct("=QQIIII")  # fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count, reserved
    extent = struct.Struct("=QQQQQIIII")  # logical, physical, length, 2 reserved, flags, 3 reserved
    total, start = 0, 0
    while True:
        buf = bytearray(header.size + extent.size * FIEMAP_BATCH)
        header.pack_into(buf, 0, start, (1 << 64) - 1 - start, 0, 0, FIEMAP_BATCH, 0)
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)  # a mutable buffer: the kernel fills it in place
        mapped = header.unpack_from(buf, 0)[3]
        if mapped == 0:
            return total
        for i in range(mapped):
            logical, _, length, _, _, flags, _, _, _ = extent.unpack_from(buf, header.size + i * extent.size)
            if not flags & EXTENT_SHARED:
                total += length
            if flags & EXTENT_LAST:
                return total
            start = logical + length


def has_syncfs() -> bool:
    """syncfs(2) flushes a whole filesystem in one call (PostgreSQL's recovery_init_sync_method = syncfs);
    elsewhere PostgreSQL fsyncs file by file, its default."""
    return native()


# ---- locks ---------------------------------------------------------------------------------------------------
def try_lock(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting: False if another holder has it. The lock goes
    when fd is closed or the process dies, even by SIGKILL. flock on Linux, which belongs to the open
    descriptor; the fallback, POSIX record locks (lockf), belong to the process (locks_belong_to_process).
    Windows: msvcrt.locking(fd, LK_NBLCK, 1), which belongs to the descriptor."""
    import fcntl

    try:
        if native():
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except PermissionError:
        return False  # lockf's EACCES: held by another process
    return True


def locks_belong_to_process() -> bool:
    """try_lock's locks belong to the process, not to the descriptor: two descriptors of one process never
    exclude each other, and closing either drops the process's lock. Its threads must then take turns first."""
    return not native()


# ---- processes -----------------------------------------------------------------------------------------------
def process_alive(pid: int | None) -> bool:
    """A process has this pid (ours, another user's, or a zombie); no pid, none. Windows: os.kill ends the
    process there; OpenProcess instead."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def can_inspect_processes() -> bool:
    """Whether the process_* calls below can answer (/proc on Linux); elsewhere a pid's liveness is all we know.
    macOS: libproc (proc_pidinfo) answers the same questions."""
    return native() and os.path.isdir("/proc/self/fd")


def process_ids() -> list[int]:
    """Every process we may inspect; none where we cannot."""
    if not can_inspect_processes():
        return []
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    if not native():
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_parent(pid: int) -> int:
    """The parent's pid; 0 if unknown (for this process, os.getppid() always knows)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[1]) if fields else 0
    except (ValueError, IndexError):
        return 0


def process_name(pid: int) -> str:
    """The command name (`git`, `postgres`); "" if unknown."""
    if not native():
        return ""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a live pid from a reused one); None if unknown."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def process_state(pid: int) -> str | None:
    """The state letter: R, S, D, Z (a zombie), T (stopped: SIGSTOP), ...; None if unknown."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def process_cwd_or_none(pid: int) -> str | None:
    """The working directory; None if it has none (a zombie), we may not see it (another user's), or cannot."""
    return _readlink_or_none(f"/proc/{pid}/cwd")


def process_exe_or_none(pid: int) -> str | None:
    """The executable the process runs; None where we cannot tell."""
    return _readlink_or_none(f"/proc/{pid}/exe")


def process_cmdline_or_none(pid: int) -> list[str] | None:
    if not native():
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0") if raw else None


def _readlink_or_none(path: str) -> str | None:
    if not native():
        return None
    try:
        return os.readlink(path)
    except OSError:
        return None


# ---- sockets -------------------------------------------------------------------------------------------------
def listening_sockets(port: int) -> set[str]:
    """The TCP sockets listening on port (any address), as the ids process_sockets_or_none lists; none where we
    cannot tell. macOS: libproc's proc_pidfdinfo (PROC_PIDFDSOCKETINFO), as lsof reads them."""
    found: set[str] = set()
    if not native():
        return found
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="utf-8") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(f"socket:[{fields[9]}]")
    return found


def process_sockets_or_none(pid: int) -> set[str] | None:
    """The ids of the sockets pid holds open; None if we may not look."""
    if not native():
        return None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    held = set()
    for fd in fds:
        target = _readlink_or_none(f"/proc/{pid}/fd/{fd}")
        if target is not None and target.startswith("socket:"):
            held.add(target)
    return held


def socket_holder_or_none(sockets: set[str]) -> int | None:
    """A process holding one of sockets; None if none we may inspect does."""
    if not sockets:
        return None
    for pid in process_ids():
        if (process_sockets_or_none(pid) or set()) & sockets:
            return pid
    return None


# ---- users ---------------------------------------------------------------------------------------------------
def user_name(uid: int) -> str:
    """The name of a user id, for messages; `uid N` if it has none. Windows (no pwd): the owner's SID."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def user_ids_or_none(name: str) -> tuple[int, int] | None:
    """A user's (uid, gid); None if there is no such user."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid
