"""How much of a file's disk is its own: its extents that no other file shares (reflinked with a parent
cluster's, say), as platform.unshared_extents maps them (FIEMAP on Linux); elsewhere every allocated block counts."""

from __future__ import annotations

import os

from treefork import platform


def tree_unshared_bytes(top: str) -> int:
    """mapped_bytes_or_none summed over every file under top. Where the filesystem cannot map extents (tmpfs),
    nothing can be shared either: the allocated blocks are counted from the directory listing, no file opened.
    (Where no fork was ever a reflink, the local backend counts with diskuse.py instead.)"""
    total, mapped = 0, True
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
        return platform.unshared_extents(fd)
    finally:
        os.close(fd)
