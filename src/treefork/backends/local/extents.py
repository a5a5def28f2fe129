"""How much of a file's disk is its own: the FIEMAP ioctl lists its extents, and the ones flagged shared are
reflinked with another file (a parent cluster's, say). Linux; elsewhere every allocated block counts."""

from __future__ import annotations

import errno
import fcntl
import os
import struct

FS_IOC_FIEMAP = 0xC020660B
EXTENT_LAST, EXTENT_SHARED = 0x1, 0x2000
HEADER = struct.Struct("=QQIIII")  # fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count, reserved
EXTENT = struct.Struct("=QQQQQIIII")  # logical, physical, length, 2 reserved, flags, 3 reserved
BATCH = 128
NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS)


def tree_unshared_bytes(top: str, *, may_share: bool = True) -> int:
    """mapped_bytes_or_none summed over every file under top. Where the filesystem cannot map extents (tmpfs),
    or the caller knows nothing there was ever reflinked (may_share=False: every fork a copy), nothing can be
    shared either: the allocated blocks are counted from the directory listing, no file opened."""
    total, mapped = 0, may_share
    stack = [top]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # gone meanwhile
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                size = mapped_bytes_or_none(entry.path) if mapped else None
                mapped = size is not None
                total += size if size is not None else _blocks(entry)
    return total


def _blocks(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_blocks * 512
    except OSError:
        return 0


def mapped_bytes_or_none(path: str) -> int | None:
    """The bytes of path's unshared extents; None where the filesystem cannot map them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return 0  # gone meanwhile (a dropped table), or not a regular file
    try:
        return _unshared(fd)
    except OSError as e:
        if e.errno not in NOT_SUPPORTED:
            raise
        return None
    finally:
        os.close(fd)


def _unshared(fd: int) -> int:
    total, start = 0, 0
    while True:
        buf = bytearray(HEADER.size + EXTENT.size * BATCH)
        HEADER.pack_into(buf, 0, start, (1 << 64) - 1 - start, 0, 0, BATCH, 0)
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)  # a mutable buffer: the kernel fills it in place
        mapped = HEADER.unpack_from(buf, 0)[3]
        if mapped == 0:
            return total
        for i in range(mapped):
            logical, _, length, _, _, flags, _, _, _ = EXTENT.unpack_from(buf, HEADER.size + i * EXTENT.size)
            if not flags & EXTENT_SHARED:
                total += length
            if flags & EXTENT_LAST:
                return total
            start = logical + length
