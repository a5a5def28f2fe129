"""One PostgreSQL 18 cluster (data directory + postmaster) that treefork created for a workspace or a root.

Layout, under the treefork home (docs/local-backend.md):
  clusters.lock                 serialises port allocation and cluster registration, machine-wide
  clusters/<id>/cluster.json    treefork's record of the cluster: owner repo and workspace, port, passwords (0600)
  clusters/<id>/data/           the data directory, owned by the user the server runs as
  clusters/<id>/server.log      the server's log
  pristine/<version>-<format>/  initdb's output, copied for every new root (pristine.py)

The record is the proof of ownership: treefork only starts, stops or removes clusters it recorded there, and
never trusts anything inside a database (an agent can write there).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from treefork import debug, paths, platform, proc, procinfo
from treefork.backends.local import binaries, extensions, libpq, ports
from treefork.backends.local.binaries import Binaries
from treefork.backends.local.dist import linked_copy, server_user, wheel_bin_dir, wheel_version
from treefork.backends.local.home import open_home, read_ours
from treefork.errors import BackendError
from treefork.fsutil import atomic_write_text
from treefork.locks import FileLock
from treefork.redact import register

ADMIN_USER = "postgres"
HOST = "127.0.0.1"
CREATING, READY = "creating", "ready"
STAGING = ".reset"  # `<id>.reset`: the staging cluster a reset or a restore prepares beside `<id>` (clusters.py)
OLD_DATA = "data.old"  # the data directory a reset swaps out, for the moment between its two renames
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}  # as pg_ctl's -m
RESTART_ATTEMPTS = 20
STALE_MARKS = ("lock file", "shared memory block is still in use")
REMOVING = ".removing-"  # a cluster directory being removed is renamed <id>.removing-<random> first (tombstone)
PM_STATUS_LINE = 7  # postmaster.pid's 8th line: starting, ready, stopping (LOCK_FILE_LINE_PM_STATUS)

# A development database, not a production one: small shared memory, no I/O worker processes, no WAL
# senders, one autovacuum worker. wal_level stays `replica`, which pg_backup_start (the online fork) needs.
DEV_SETTINGS = (
    "shared_buffers = 16MB\n"
    "max_connections = 40\n"
    "superuser_reserved_connections = 3\n"
    "max_wal_senders = 0\n"
    "max_replication_slots = 64\n"  # one temporary slot per fork in progress (fork.py)
    "wal_level = replica\n"
    "max_worker_processes = 4\n"
    "max_parallel_workers = 2\n"
    "autovacuum_max_workers = 1\n"
    "min_wal_size = 16MB\n"
    "max_wal_size = 128MB\n"
    "jit = off\n"
    "huge_pages = off\n"
    "logging_collector = off\n"
)
# A fork starts from a backup label, and PostgreSQL first fsyncs every file of the copy, one by one; syncfs
# flushes the filesystem in one call instead (about 100 ms less per fork, docs/benchmarks.md), where there is one.
SYNCFS_SETTING = "recovery_init_sync_method = syncfs\n"
# PostgreSQL 18's own settings (a cluster on older binaries refuses to start with them)
DEV_SETTINGS_18 = "io_method = sync\nautovacuum_worker_slots = 2\n"


@dataclass
class ClusterRecord:
    id: str
    repo_id: str
    workspace: str  # "<root>" for the root
    port: int
    dbname: str
    role: str
    admin_password: str
    role_password: str
    parent: str | None = None  # the cluster it was forked from
    method: str | None = None  # clone | copy | empty | import
    status: str = CREATING
    pid: int | None = None  # the command creating it, while status is creating
    pid_started: int | None = None  # that command's start time (platform.process_start_time): tells a reused pid
    created_at: float = field(default_factory=time.time)
    least_privilege: bool = False  # the role is not a superuser (privileges.py); False: made by an older treefork
    binding: str | None = None  # HMAC of the id under a key in the repo's secrets.json: made by this repo's treefork
    repo_dir: str | None = None  # the repository's git common dir (None: made by an older treefork)
    pg_bin: str | None = None  # the PostgreSQL bin directory it runs on (None: the wheel's: binaries.py)
    pg_version: str | None = None  # that PostgreSQL's version when the cluster was made ("15.18")

    def binaries(self) -> Binaries:
        return binaries.of_record(self.pg_bin, self.pg_version)

    def run_on(self, bins: Binaries) -> None:
        self.pg_bin = None if bins.bin_dir is None else str(bins.bin_dir)
        self.pg_version = bins.version

    def secrets(self) -> None:
        register(self.admin_password)
        register(self.role_password)


def new_password() -> str:
    return os.urandom(18).hex()


class Cluster:
    """A cluster's files and its postmaster. Only ClusterStore makes these."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.id = directory.name
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.record_file = directory / "cluster.json"
        self._lock = FileLock(directory / "lock", timeout=START_TIMEOUT, what=f"cluster {self.id}")

    # ---- the record ---------------------------------------------------------------------------
    def record_or_none(self) -> ClusterRecord | None:
        try:
            data = json.loads(read_ours(self.record_file))
            rec = ClusterRecord(**{k: v for k, v in data.items() if k in ClusterRecord.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return None
        rec.secrets()
        return rec

    def save(self, rec: ClusterRecord) -> None:
        rec.secrets()
        atomic_write_text(self.record_file, json.dumps(asdict(rec), indent=2, sort_keys=True) + "\n", mode=0o600)

    # ---- connecting ---------------------------------------------------------------------------
    def admin(self, rec: ClusterRecord, *, password: str | None = None, timeout: int = 10) -> libpq.Connection:
        return libpq.connect(
            host=HOST,
            port=rec.port,
            user=ADMIN_USER,
            password=password or rec.admin_password,
            dbname="postgres",
            connect_timeout=timeout,
            require_auth="scram-sha-256",
        )

    def accepts(self, rec: ClusterRecord) -> bool:
        try:
            self.admin(rec, timeout=3).close()
            return True
        except libpq.PgConnectError:
            return False

    # ---- running ------------------------------------------------------------------------------
    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while the cluster is started, or stopped and its data directory swapped."""
        return self._lock.held()

    def recover_swap(self) -> None:
        """Finish or undo what a killed reset left (clusters.py): with `data` in place the swap happened and
        `data.old` goes; without it, `data.old` comes back. Both carry this cluster's own passwords. A dead
        reset's staging cluster goes too; a live one's is left to it."""
        staging = Cluster(self.dir.with_name(self.id + STAGING))
        owner = staging.record_or_none()
        if owner is not None and platform.process_alive(owner.pid):
            return  # a reset in progress (this process's own, or another's)
        old = self.dir / OLD_DATA
        if old.exists():
            if (self.data / "PG_VERSION").exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                shutil.rmtree(self.data, ignore_errors=True)
                os.rename(old, self.data)
        if staging.dir.exists():
            staging.destroy()

    def postmaster_pid(self) -> int | None:
        """The pid of this cluster's running postmaster, if one runs: the pid postmaster.pid names, if that
        process is alive and sits in this data directory. After a crash or a reboot the file's pid may name
        another process (another cluster's, anyone's): never this cluster's, never signalled."""
        return self._pid_file()[0]

    def _is_postmaster(self, pid: int) -> bool:
        if not platform.process_alive(pid) or _zombie(pid):
            return False
        if not platform.can_inspect_processes():
            return True  # no /proc: a live pid is all we know
        # pg_ctl starts it as `postgres -D <data> ...`, and a postmaster keeps that command line (its children
        # show their role instead); or it runs in the data directory (also once that was renamed: a tombstone)
        argv = platform.process_cmdline_or_none(pid) or []
        where = os.path.realpath(self.data)
        if any(a == "-D" and b in (str(self.data), where) for a, b in zip(argv, argv[1:], strict=False)):
            return True
        return platform.process_cwd_or_none(pid) == where

    def expect_answering(self, rec: ClusterRecord) -> None:
        """A postmaster that is stopped (SIGSTOP, a debugger) accepts TCP connections and never answers:
        say so at once rather than wait for it."""
        pid = self.postmaster_pid()
        if pid is not None and platform.process_state(pid) == "T":
            raise BackendError(
                f"{describe(rec)} is not answering: its postmaster, pid {pid}, is stopped (state T in /proc/{pid}/stat)",
                hint=f"`kill -CONT {pid}` resumes it (something sent it SIGSTOP, or a debugger holds it)",
            )

    def ensure_running(self, rec: ClusterRecord) -> None:
        """Start the cluster if it is not up. Its port never changes: a port taken by another program is an
        error that names the program. A cluster an older treefork made loses its superuser role here."""
        self.expect_answering(rec)
        if not self._pid_file()[1] and not self.accepts(rec):  # its own postmaster says ready: no login to ask
            with self._lock.held():
                if self.postmaster_pid() is not None:
                    self.wait_ready(rec, what="is running but not accepting connections")
                else:
                    self.start(rec)
        if not rec.least_privilege:
            with self.admin(rec) as conn:
                self.downgrade(rec, conn)

    def downgrade(self, rec: ClusterRecord, conn: libpq.Connection) -> None:
        """The workspace role of a cluster an older treefork made, superuser there, made what it is today
        (privileges.py), and the verifiers its parent left in pg_authid's file forgotten; recorded once done."""
        from treefork.backends.local import privileges

        privileges.downgrade(conn, rec.role, rec.dbname)
        privileges.forget_old_passwords(conn)
        rec.least_privilege = True
        self.save(rec)

    def start(
        self, rec: ClusterRecord, *, admin_only: bool = False, password: str | None = None, keep: bool = False
    ) -> libpq.Connection | None:
        """password: the admin's password inside the data directory, when it is not yet rec's (a fresh fork).
        keep: return the admin connection that found it ready (the caller closes it), else None."""
        self.recover_swap()  # a reset or restore killed mid-swap: finished or undone before anything else
        self.expect_data(rec)
        rec.binaries().expect_present(describe(rec))
        self.expect_port_free(rec)
        ports.reserve(rec.port, self.dir)  # a cluster an older treefork made reserves its port now
        self._clear_stale_pid_file()
        self.write_config(rec, admin_only=admin_only)
        if not self.log.exists():
            self.log.touch(mode=0o600)
            give_to_server_user(self.log)
        for attempt in range(RESTART_ATTEMPTS):
            log_from = self.log_size()
            pg(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-s",
                "-o",
                self.start_options(rec),
                "start",
                "--no-wait",
                binaries=rec.binaries(),
            )
            try:
                conn = self.wait_ready(rec, what="did not start", password=password, keep=keep, log_from=log_from)
                self._expect_every_loopback(rec, conn)
                return conn
            except BackendError as e:
                # after a kill -9, the old postmaster (not yet reaped) or its backends hold the lock file or
                # the shared memory for a moment: PostgreSQL refuses to start until they are gone
                if attempt + 1 == RESTART_ATTEMPTS or not any(m in e.message for m in STALE_MARKS):
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def expect_data(self, rec: ClusterRecord) -> None:
        if not (self.data / "PG_VERSION").is_file():
            who = "root" if rec.workspace == "<root>" else rec.workspace
            raise BackendError(
                f"the data directory of {describe(rec)} is missing ({self.data}): its databases are gone",
                hint=f"`treefork rm {who}` removes what is left; `treefork new {who}` makes it again"
                if who != "root"
                else f"restore {self.data} from a backup, or move .git/treefork aside and `treefork init` again",
            )

    def expect_port_free(self, rec: ClusterRecord) -> None:
        holder = ports.holder_or_none(rec.port)
        if holder is not None:
            raise BackendError(
                f"port {rec.port} of {describe(rec)} is taken by {holder}",
                hint=f"stop that program, then run any treefork command (the cluster keeps port {rec.port}, "
                "which every env file of this workspace names)",
            )

    def port_taken_or_none(self, rec: ClusterRecord) -> str | None:
        """Who holds the port of this cluster while it is stopped (a squatter the app would hand its
        password to), or None."""
        if self.postmaster_pid() is not None:
            return None
        return ports.holder_or_none(rec.port)

    def _expect_every_loopback(self, rec: ClusterRecord, conn: libpq.Connection | None) -> None:
        """PostgreSQL only warns when it cannot bind one of its addresses: a program that took [::1]:port
        just before it started would get the app's password (libpq tries ::1 first for `localhost`)."""
        pid = self.postmaster_pid()
        if pid is None or ports.listens_everywhere(pid, rec.port) is not False:
            return
        if conn is not None:
            conn.close()
        self.stop(mode="immediate")
        holder = ports.holder_or_none(rec.port) or "another program"
        raise BackendError(
            f"port {rec.port} of {describe(rec)} is taken by {holder} (on {ports.HOST6})",
            hint=f"stop that program, then run any treefork command (the cluster keeps port {rec.port}, "
            "which every env file of this workspace names)",
        )

    def _clear_stale_pid_file(self) -> None:
        """After a crash or a reboot, postmaster.pid may name a live process that is not this cluster's (its pid
        reused): PostgreSQL would refuse to start for good. Such a file goes when no process at all runs in the
        data directory (an old backend that outlived its postmaster keeps PostgreSQL's own interlock). A dead
        pid's file is PostgreSQL's to take over."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if (
            not platform.can_inspect_processes()
            or not platform.process_alive(pid)
            or _zombie(pid)
            or self._is_postmaster(pid)
        ):
            return
        if procinfo.pids_in(os.path.realpath(self.data)):
            return
        pid_file.unlink(missing_ok=True)

    def wait_ready(
        self,
        rec: ClusterRecord,
        *,
        what: str,
        password: str | None = None,
        keep: bool = False,
        log_from: int | None = None,
    ) -> libpq.Connection | None:
        """Wait until the cluster accepts the admin, or say why not from its log: crash recovery still running,
        disk full, a lock file, a port. keep: return that admin connection (the caller closes it).

        As `pg_ctl -w` does, it watches the status line of postmaster.pid (a file read every 2 ms) and connects
        once it says ready, or every 100 ms whatever it says: each attempt while the server starts costs it a
        backend process and a refusal, on the CPU the recovery needs."""
        started = time.monotonic()
        give_up, next_try = started + START_TIMEOUT, started  # at once: it may be running already
        log_from = self.log_size() if log_from is None else log_from
        while (now := time.monotonic()) < give_up:
            pid, ready = self._pid_file()
            if pid is not None and platform.process_state(pid) == "T":
                self.expect_answering(rec)
            if ready or now >= next_try:
                try:
                    conn = self.admin(rec, password=password, timeout=2)
                except libpq.PgConnectError as e:
                    if "password authentication failed" in e.message or "require_auth" in e.message:
                        raise BackendError(f"{describe(rec)}: {e.message}", hint=f"see {self.log}") from None
                    next_try = time.monotonic() + (0.01 if ready else 0.1)  # a stale file may say ready
                else:
                    if keep:
                        return conn
                    conn.close()
                    return None
            if pid is None and now > started + 1.0:
                break  # the postmaster exited: the log says why
            time.sleep(0.002)
        raise BackendError(
            f"{describe(rec)} {what}: {self.log_tail(since=log_from) or 'nothing new in its log'}",
            hint=f"see {self.log}; after fixing the cause, `treefork server start`",
        )

    def _pid_file(self) -> tuple[int | None, bool]:
        """The live postmaster's pid (None: none running), and whether postmaster.pid's status line says ready."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None, False
        if not self._is_postmaster(pid):
            return None, False
        return pid, len(lines) > PM_STATUS_LINE and lines[PM_STATUS_LINE].strip() == "ready"

    def stop(self, *, mode: str = "fast") -> bool:
        """Signal the postmaster as `pg_ctl stop -m MODE` would, and wait (polling every 5 ms, not pg_ctl's
        100 ms) until it has gone. False if it was not running."""
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, STOP_SIGNALS[mode])
        except ProcessLookupError:
            return True
        give_up = time.monotonic() + STOP_TIMEOUT
        while self.postmaster_pid() == pid and time.monotonic() < give_up:
            time.sleep(0.005)
        return True

    def destroy(self) -> None:
        """Stop the postmaster (immediately: its data is going away) and remove every file of the cluster.
        The directory is renamed to a tombstone (<id>.removing-<random>) first, in one step: a kill during the
        removal leaves a tombstone, which `treefork gc` (and the next removal of this cluster) finishes, never
        a record-less directory half full of data."""
        rec = self.record_or_none()
        self.stop(mode="immediate")
        tomb = self.dir.with_name(f"{self.id}{REMOVING}{os.urandom(4).hex()}")
        try:
            os.rename(self.dir, tomb)
        except FileNotFoundError:
            return
        except OSError:
            tomb = self.dir  # cannot rename (a mount point?): remove it in place
        debug.crash_point("cluster:mid-removal")
        shutil.rmtree(tomb, ignore_errors=True)
        if rec is not None:
            ports.release(rec.port, self.dir)

    # ---- configuration ------------------------------------------------------------------------
    def private_settings(self, rec: ClusterRecord) -> dict[str, str]:
        """The settings that keep a cluster to treefork and its workspace: on the command line, where neither
        postgresql.conf nor ALTER SYSTEM's postgresql.auto.conf can override them (`treefork doctor` checks)."""
        return {
            "listen_addresses": ",".join(ports.loopbacks()),
            "port": str(rec.port),
            "unix_socket_directories": "",
            "hba_file": str(self.data / "pg_hba.conf"),
            "ident_file": str(self.data / "pg_ident.conf"),
            "password_encryption": "scram-sha-256",
        }

    def start_options(self, rec: ClusterRecord) -> str:
        """private_settings as postgres options; pg_ctl hands them to /bin/sh, so each is quoted for it."""
        import shlex

        return " ".join(shlex.quote(f"-c{name}={value}") for name, value in self.private_settings(rec).items())

    def write_config(self, rec: ClusterRecord, *, admin_only: bool = False) -> None:
        conf = "# written by treefork on every start\n" + "".join(
            f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n" for name, value in self.private_settings(rec).items()
        )
        major = rec.binaries().major
        compat = extensions.control_path_setting() if major >= 18 else ""  # extension_control_path is 18's
        give_to_server_user(self.data / "treefork.conf", conf + dev_settings(major) + compat)
        who = ADMIN_USER if admin_only else "all"
        hba = "# written by treefork: TCP on loopback only, SCRAM only (never a cleartext password)\n" + "".join(
            f"host all {who} {host}/{32 if host == HOST else 128} scram-sha-256\n" for host in ports.loopbacks()
        )
        give_to_server_user(self.data / "pg_hba.conf", hba)

    def open_to_role(self, rec: ClusterRecord, conn: libpq.Connection) -> None:
        """After a fork: let the workspace's role in (the admin alone was allowed while passwords changed)."""
        self.write_config(rec)
        conn.execute("SELECT pg_reload_conf()")

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_tail(self, *, since: int = 0) -> str:
        """The last line of the log (written after offset `since`) that says what went wrong."""
        try:
            with self.log.open("rb") as f:
                f.seek(since)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        bad = [ln for ln in lines if any(w in ln for w in ("FATAL", "PANIC", "ERROR", "could not"))]
        return (bad or lines or [""])[-1].strip()

    def extra_disk_bytes(self) -> int:
        """The disk this cluster really adds: its files' extents that no other file shares (a reflinked fork
        costs only what it has written since), or, where the filesystem cannot tell, every allocated block."""
        from treefork.backends.local import extents

        return extents.tree_unshared_bytes(str(self.data))


def dev_settings(major: int = 18) -> str:
    newer = DEV_SETTINGS_18 if major >= 18 else ""
    return DEV_SETTINGS + newer + (SYNCFS_SETTING if platform.has_syncfs() else "")


def _zombie(pid: int) -> bool:
    """A killed postmaster nobody reaped (PID 1 in a container may not) still answers kill(pid, 0)."""
    return platform.process_state(pid) == "Z"


def describe(rec: ClusterRecord) -> str:
    who = "the root" if rec.workspace == "<root>" else f"workspace {rec.workspace!r}"
    return f"the PostgreSQL cluster of {who} (127.0.0.1:{rec.port})"


def give_to_server_user(path: Path, text: str | None = None) -> None:
    if text is not None:
        atomic_write_text(path, text, mode=0o600)
    run_as = server_user()
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def pg(tool: str, *args: str, check: bool = True, binaries: Binaries | None = None) -> proc.Result:
    """A program of the cluster's PostgreSQL (default: the wheel's), as the server's OS user."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
    program = str(binaries.tool(tool) if binaries is not None else bin_dir() / tool)
    return proc.run(program, *args, env=env, run_as=server_user(), check=check, cwd="/", timeout=120)


def bin_dir() -> Path:
    wheel = wheel_bin_dir()
    if not paths.is_root():
        return wheel
    home = paths.treefork_home()
    open_home(home)
    return linked_copy(wheel, home / "dist" / wheel_version())
