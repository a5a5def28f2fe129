"""The online fork: a physical copy of a running cluster, taken without disturbing its clients.

What pg_basebackup does over the network, done on one machine with reflinks:
  1. a temporary replication slot (so the WAL the copy needs is kept), then pg_backup_start(fast => true) on
     the parent (a checkpoint; full-page writes forced from here on);
  2. copy the data directory file by file: a reflink where the filesystem has them (XFS, btrfs),
     else an in-kernel copy (platform.clone_file, platform.copy_range), global/pg_control last;
  3. pg_backup_stop() in the same session, whose label becomes the copy's backup_label;
  4. copy only the WAL segments from the backup's start to its end;
  5. start the copy: it replays that WAL to a consistent state and opens as a cluster of its own.
Every row committed before step 3 is in the child; nothing uncommitted is.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from treefork import debug, platform
from treefork.backends.local import libpq
from treefork.backends.local.cluster import ADMIN_USER, Cluster, ClusterRecord
from treefork.backends.local.dist import server_user
from treefork.background import Background

CLONE, COPY = "clone", "copy"

# As pg_basebackup: runtime state that a new cluster must not inherit (src/backend/backup/basebackup.c).
SKIP_FILES = {
    "postmaster.pid",
    "postmaster.opts",
    "backup_label",
    "backup_manifest",
    "tablespace_map",
    "current_logfiles",
    "pg_internal.init",
    "treefork.conf",
    "pg_hba.conf",
    "postgresql.auto.conf",  # ALTER SYSTEM's: a fork starts with none (Cluster.write_config writes it empty)
}
EMPTY_DIRS = {"pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp"}
EMPTY_DIRS |= {"pg_subtrans", "log"}
SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


class Copier:
    """Copies files as cheaply as the filesystem allows, and remembers whether every one was a reflink.

    Paths are plain strings: a fork copies about 1,300 files (four databases' catalogs), and pathlib's
    per-path objects cost a third of the copy's CPU time."""

    def __init__(self) -> None:
        self.reflink = True  # until a file could not be cloned
        self._owner = server_user()

    @property
    def method(self) -> str:
        return CLONE if self.reflink else COPY

    def file(self, src: str, dst: str, *, dir_fd: int | None = None) -> None:
        """A regular file, never what a symlink points to: as root, a link an agent planted in a data directory
        (`x -> /etc/shadow`) would otherwise put a root-only file where the agent reads. A link, a fifo, a
        socket or a device is left out (O_NONBLOCK: opening a fifo planted after the listing does not hang)."""
        try:
            s = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return  # dropped while we copied: WAL replay does not need it
        except OSError as e:
            if e.errno == errno.ELOOP:
                return  # a symlink
            raise
        try:
            st = os.fstat(s)
            if not stat.S_ISREG(st.st_mode):
                return
            d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o777)
            try:
                if st.st_size:
                    self._copy(s, d, st.st_size)
                if self._owner is not None:
                    os.fchown(d, self._owner.uid, self._owner.gid)
            finally:
                os.close(d)
        finally:
            os.close(s)

    def _copy(self, s: int, d: int, size: int) -> None:
        if self.reflink:
            if platform.clone_file(s, d):
                return
            self.reflink = False
        copied = 0
        while copied < size:
            n = platform.copy_range(s, d, size - copied)
            if n == 0:
                break  # the file shrank while we copied (truncated relation): replay rewrites it
            copied += n

    def directory(self, dst: str, mode: int) -> None:
        os.mkdir(dst, mode & 0o777)
        if self._owner is not None:
            os.chown(dst, self._owner.uid, self._owner.gid)


def copy_data_dir(src: Path, dst: Path, copier: Copier) -> None:
    """Everything but the runtime state and the WAL, with global/pg_control last."""
    copier.directory(str(dst), src.stat().st_mode)
    control = os.path.join(src, "global", "pg_control")
    copy_tree(str(src), str(dst), copier, last=control, top=True)
    for name in ("archive_status", "summaries"):
        copier.directory(os.path.join(dst, "pg_wal", name), 0o700)
    copier.file(control, os.path.join(dst, "global", "pg_control"))


def copy_tree(src: str, dst: str, copier: Copier, *, last: str = "", top: bool = False) -> None:
    """One directory's files, then its subdirectories (dst exists). Left out, as pg_basebackup does: runtime
    files (SKIP_FILES), temporary files and directories (pgsql_tmp*) and `last`; with top, the runtime
    directories (EMPTY_DIRS) are made empty. Each directory is opened without following a link (O_NOFOLLOW)
    and read through its descriptor, so no directory swapped for a link while we copy leads anywhere else."""
    fd = os.open(src, DIR_FLAGS)
    try:
        _copy_dir(fd, src, dst, copier, last=last, top=top)
    finally:
        os.close(fd)


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_dir(fd: int, src: str, dst: str, copier: Copier, *, last: str, top: bool) -> None:
    with os.scandir(fd) as it:
        entries = [e for e in it if not e.name.startswith("pgsql_tmp")]
    subdirs = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry)
        elif entry.is_file(follow_symlinks=False) and entry.name not in SKIP_FILES:
            if os.path.join(src, entry.name) != last:
                copier.file(entry.name, os.path.join(dst, entry.name), dir_fd=fd)
        # anything else (a symlink, a fifo, a socket, a device) is left out: a data directory has none
    for entry in subdirs:
        target = os.path.join(dst, entry.name)
        copier.directory(target, entry.stat(follow_symlinks=False).st_mode)
        if top and entry.name in EMPTY_DIRS:
            continue
        try:
            sub = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            continue  # dropped while we copied
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                continue  # replaced by a link or a file since the listing
            raise
        try:
            _copy_dir(sub, os.path.join(src, entry.name), target, copier, last=last, top=False)
        finally:
            os.close(sub)


def copy_wal(src: Path, dst: Path, first: str, last: str, copier: Copier) -> None:
    """The segments first..last (inclusive, same timeline), and the timeline history files."""
    for name in sorted(os.listdir(src / "pg_wal")):
        if name.endswith(".history") or (SEGMENT.match(name) and first <= name <= last):
            copier.file(os.path.join(src, "pg_wal", name), os.path.join(dst, "pg_wal", name))


def segment_name(timeline: int, lsn: str, segment_size: int) -> str:
    hi, lo = (int(x, 16) for x in lsn.split("/"))
    segno = ((hi << 32) | lo) // segment_size
    per_id = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def online_copy(conn: libpq.Connection, parent: Cluster, child: Cluster, label: str) -> str:
    """Steps 1-4 over conn, an admin session on the parent: the child's data directory, consistent once
    replayed. Returns the copy method used."""
    copier = Copier()
    row = conn.one("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
    segment_size = int(row[0] or 16777216) if row else 16777216
    # A temporary slot holds the WAL from here until this session ends: without it, a checkpoint (another
    # fork's pg_backup_start, say) may recycle the segments this copy needs before they are copied.
    slot = "treefork_fork_" + os.urandom(6).hex()
    conn.execute("SELECT pg_create_physical_replication_slot($1, true, true)", (slot,))
    start = conn.one("SELECT pg_backup_start($1, true)", (label,))
    assert start and start[0]
    debug.mark("fork:backup-start")
    try:
        copy_data_dir(parent.data, child.data, copier)
        debug.crash_point("fork:after-copy")
    finally:
        stop = conn.one("SELECT lsn, labelfile FROM pg_backup_stop(false)")
    assert stop and stop[0] and stop[1]
    timeline = int(re.search(r"START TIMELINE: (\d+)", stop[1]).group(1))  # type: ignore[union-attr]
    (child.data / "backup_label").write_text(stop[1])
    if copier._owner is not None:
        os.chown(child.data / "backup_label", copier._owner.uid, copier._owner.gid)
    first = segment_name(timeline, start[0], segment_size)
    last = segment_name(timeline, stop[0], segment_size)
    copy_wal(parent.data, child.data, first, last, copier)
    conn.execute("SELECT pg_drop_replication_slot($1)", (slot,))
    return copier.method


def new_verifiers(rec: ClusterRecord) -> Background[dict[str, str]]:
    """The SCRAM verifiers of the child's own passwords (its admin's and its role's), computed in a thread while
    the copy and the child's start run: two PBKDF2s, which rekey would otherwise wait for."""
    from treefork.backends.local import privileges

    def compute() -> dict[str, str]:
        return {
            ADMIN_USER: privileges.scram_verifier(rec.admin_password),
            rec.role: privileges.scram_verifier(rec.role_password),
        }

    return Background(compute, name="verifiers")


def rekey(
    conn: libpq.Connection, child: Cluster, rec: ClusterRecord, verifiers: Background[dict[str, str]] | None = None
) -> None:
    """Step 6, over conn (the child's admin, logged in with the parent's password the copy carries): the child's
    own passwords (its admin's and its role's) and the role made no superuser, in one transaction (one commit to
    wait for); the parent's verifiers then vacuumed out of pg_authid's file; then let the role in.

    The child starts admitting only the admin (pg_hba), so the parent's credentials never open it to anyone, and
    it opens to the role with none of the parent's verifiers left in its files, and the role not a superuser
    (a parent made by an older treefork had one)."""
    from treefork.backends.local import privileges

    own = (verifiers or new_verifiers(rec)).result()
    debug.mark("rekey:verifiers")
    with conn.transaction():
        # Not flushed at its commit: VACUUM FULL's commit, next, flushes the WAL up to and past it (one flush, not
        # two); a crash before that leaves a half-made fork, which is removed, never opened.
        conn.execute("SET LOCAL synchronous_commit = off")
        for role in (ADMIN_USER, rec.role):
            privileges.set_verifier(conn, role, own[role])
        debug.mark("rekey:passwords")
        privileges.downgrade(conn, rec.role, rec.dbname)
    debug.mark("rekey:downgrade")
    privileges.forget_old_passwords(conn)
    debug.mark("rekey:vacuum-full")
    rec.least_privilege = True
    child.open_to_role(rec, conn)
    debug.mark("rekey:open-to-role")


def set_password(conn: libpq.Connection, role: str, password: str) -> None:
    """One of treefork's own (random) passwords, its verifier made here: the password itself never reaches the
    server or its log, and its rounds are privileges.SCRAM_ITERATIONS."""
    from treefork.backends.local import privileges
    from treefork.backends.local.libpq import SQL, Ident, Literal

    conn.execute(SQL.of("ALTER ROLE {} PASSWORD {}", Ident(role), Literal(privileges.scram_verifier(password))))
