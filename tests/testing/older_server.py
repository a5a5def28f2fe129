"""A throwaway PostgreSQL server of an older major version (Debian's `postgresql-15` package), on 127.0.0.1 at a
free port: the server a user already runs, for `init --server-url`. As root it runs as the unprivileged user the
embedded clusters run as (PostgreSQL refuses root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def bin_dir(major: int) -> Path:
    return Path(f"/usr/lib/postgresql/{major}/bin")


@dataclass
class OlderServer:
    major: int
    port: int
    password: str
    data: Path

    def url(self, dbname: str = "postgres", *, user: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://{user}:{password or self.password}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10)

    def fresh_database(self, name: str) -> str:
        """An empty database NAME on this server (dropped first if a run left it); its URL, as its owner's."""
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    from treefork.backends.local.dist import server_user

    who = server_user()
    assert who is not None
    return {"user": who.uid, "group": who.gid, "extra_groups": []}


@contextlib.contextmanager
def older_server(major: int, *, bins: Path | None = None, options: str = "") -> Iterator[OlderServer]:
    """initdb, start, yield, stop, remove. Skips the test when that major's binaries are not installed.
    bins: other binaries of that major (the wheel's); options: more `postgres` options."""
    bins = bins or bin_dir(major)
    if not (bins / "initdb").exists():
        pytest.skip(f"PostgreSQL {major} is not installed (apt-get install postgresql-{major})")
    who = _as_server_user()
    top = Path(tempfile.mkdtemp(prefix=f"treefork-test-pg{major}-"))
    top.chmod(0o755)
    data, password = top / "data", os.urandom(12).hex()
    pwfile = top / "pw"
    pwfile.write_text(password + "\n")
    if who:
        os.chown(top, who["user"], who["group"])
        os.chown(pwfile, who["user"], who["group"])
    pwfile.chmod(0o600)
    port = _free_port()
    server = OlderServer(major=major, port=port, password=password, data=data)
    run = {"check": True, "capture_output": True, "cwd": top, **who}
    try:
        subprocess.run(
            [bins / "initdb", "-D", data, "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"],
            **run,
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {top} -c fsync=off {options}"
        subprocess.run([bins / "pg_ctl", "-D", data, "-l", top / "log", "-w", "-o", options, "start"], **run)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([bins / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], **{**run, "check": False})
        shutil.rmtree(top, ignore_errors=True)
