"""The local backend's processes, ports and records under attack: the red team's round-3 findings 4, 12, 16, 17,
24, 25, 31, 34 and 39, and round 1's 15, each replayed with real clusters, real squatters (a socket bound to a
cluster's port), real stale files and a second treefork home, and each now failing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import db_url, make_repo, run_tf
from testing.cli import assert_one_line_error, gc_dry, ls, new
from testing.repo import registry
from testing.server import cluster_dirs, cluster_of, home
from testing.waits import wait_until
from treefork.backends.local.ports import has_ipv6_loopback

IPV6 = has_ipv6_loopback()


def record(repo: Path, name: str) -> dict[str, Any]:
    rec = cluster_of(repo, name)
    assert rec is not None
    return rec


def cluster_dir(rec: dict[str, Any]) -> Path:
    return home() / "clusters" / rec["id"]


def postmaster_pid(rec: dict[str, Any]) -> int | None:
    try:
        return int((cluster_dir(rec) / "data" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def doctor(repo: Path) -> dict[str, dict[str, Any]]:
    out = json.loads(run_tf(repo, "doctor", "--json", check=False).out)
    return {c["name"]: c for c in out["checks"]}


@contextmanager
def squatting(host: str, port: int) -> Iterator[list[socket.socket]]:
    """A program listening on host:port that logs every connection it accepts (none must come)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    squatter = socket.socket(family, socket.SOCK_STREAM)
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind((host, port))
    squatter.listen(8)
    squatter.setblocking(False)  # noqa: FBT003
    accepted: list[socket.socket] = []
    try:
        yield accepted
        while True:
            try:
                accepted.append(squatter.accept()[0])
            except BlockingIOError:
                break
    finally:
        squatter.close()
        for conn in accepted:
            conn.close()


# ---- 4. the app's URL and a port squatter ------------------------------------------------------------
@pytest.mark.skipif(not IPV6, reason="this machine has no IPv6 loopback")
def test_finding_4_nobody_can_listen_on_ipv6_loopback_while_the_cluster_runs(tf_repo: Path) -> None:
    """libpq tries ::1 first for `localhost`: the cluster holds [::1]:port as well as 127.0.0.1:port."""
    wt = new(tf_repo, "v6")
    rec = record(tf_repo, "v6")
    with pytest.raises(OSError), socket.socket(socket.AF_INET6) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::1", rec["port"]))
    on_localhost = db_url(wt).replace("127.0.0.1", "localhost").replace("@localhost:", "@[::1]:")
    with psycopg.connect(on_localhost) as conn:  # the app's own role, over ::1, with SCRAM
        assert conn.execute("SELECT inet_server_addr()::text").fetchone() == ("::1/128",)


@pytest.mark.skipif(not IPV6, reason="this machine has no IPv6 loopback")
def test_finding_4_a_squatter_on_a_stopped_clusters_ipv6_port_is_named_and_never_connected_to(tf_repo: Path) -> None:
    new(tf_repo, "sq6")
    rec = record(tf_repo, "sq6")
    run_tf(tf_repo, "server", "stop")
    with squatting("::1", rec["port"]) as accepted:
        assert ls(tf_repo)["sq6"]["server_state"] == "port taken"
        checks = doctor(tf_repo)
        assert checks["ports"]["level"] == "fail" and "sq6" in checks["ports"]["message"]
        r = run_tf(tf_repo, "url", "sq6", check=False)
        assert r.rc == 1
        assert_one_line_error(r.err, f"port {rec['port']}", f"pid {os.getpid()}")
        r = run_tf(tf_repo, "server", "start", check=False)
        assert r.rc == 1 and f"port {rec['port']}" in r.err and f"pid {os.getpid()}" in r.err
    assert accepted == [], "no treefork command connected to the squatter"
    assert ls(tf_repo)["sq6"]["server_state"] == "stopped"
    run_tf(tf_repo, "url", "sq6")  # the port is back: it starts on it
    assert ls(tf_repo)["sq6"]["server_state"] == "running"


# ---- 12. a stale postmaster.pid whose pid another process has now --------------------------------------
def test_finding_12_a_stale_pid_file_naming_another_process_neither_blocks_a_start_nor_gets_it_killed(
    tf_repo: Path,
) -> None:
    new(tf_repo, "stale")
    rec, root = record(tf_repo, "stale"), record(tf_repo, "<root>")
    pid_file = cluster_dir(rec) / "data" / "postmaster.pid"
    text = pid_file.read_text().splitlines(keepends=True)

    def plant(pid: int) -> None:
        """The file a power cut leaves, its pid now another process's."""
        pid_file.write_text("".join([f"{pid}\n", *text[1:]]))
        st = pid_file.parent.stat()
        os.chown(pid_file, st.st_uid, st.st_gid)

    run_tf(tf_repo, "server", "stop")
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        plant(stranger.pid)  # anyone's process
        run_tf(tf_repo, "server", "stop")  # never signals the process the stale file names
        assert stranger.poll() is None
        assert ls(tf_repo)["stale"]["server_state"] == "stopped"
        run_tf(tf_repo, "url", "stale")
        assert ls(tf_repo)["stale"]["server_state"] == "running" and stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    run_tf(tf_repo, "server", "stop")
    run_tf(tf_repo, "url", "root")
    root_pm = postmaster_pid(root)
    assert root_pm is not None
    plant(root_pm)  # another cluster's postmaster (the red team's case: one started just before)
    run_tf(tf_repo, "url", "stale")
    assert ls(tf_repo)["stale"]["server_state"] == "running"
    assert postmaster_pid(rec) != root_pm and postmaster_pid(root) == root_pm and alive(root_pm)


# ---- 16, 31. a `new` killed mid-fork --------------------------------------------------------------------
def test_finding_16_a_fork_killed_with_its_child_running_is_shown_by_doctor_and_collected_by_gc(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "new", "k", env={"TREEFORK_CRASH_AT": "fork:after-start"}, check=False)
    assert r.rc == -signal.SIGKILL
    rec = record(tf_repo, "k")
    assert rec["status"] == "creating"
    child_pm = postmaster_pid(rec)
    assert child_pm is not None and alive(child_pm), "the half-made cluster's postmaster runs"
    assert [(a["name"], a["action"]) for a in gc_dry(tf_repo)] == [("k", "collect")]
    assert doctor(tf_repo)["orphans"]["level"] == "fail"
    run_tf(tf_repo, "gc")
    wait_until(lambda: not alive(child_pm), "the half-made cluster's postmaster stopped")
    assert cluster_of(tf_repo, "k") is None and [d for d in cluster_dirs(tf_repo) if "-k-" in d] == []
    assert gc_dry(tf_repo) == [] and doctor(tf_repo)["orphans"]["level"] == "ok"
    wt = new(tf_repo, "k")  # its worktree was kept: a re-run makes the workspace
    assert ls(tf_repo)["k"]["status"] == "ready"
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_finding_31_a_killed_news_pid_reused_by_another_process_blocks_nothing(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "new", "reused", env={"TREEFORK_CRASH_AT": "fork:after-copy"}, check=False)
    assert r.rc == -signal.SIGKILL
    reg_file = tf_repo / ".git" / "treefork" / "registry.json"
    data = json.loads(reg_file.read_text())
    data["workspaces"]["reused"]["pid"] = 1  # the killed process's pid, now another (live) process's
    reg_file.write_text(json.dumps(data))
    rec_file = cluster_dir(record(tf_repo, "reused")) / "cluster.json"
    rec_file.write_text(json.dumps({**json.loads(rec_file.read_text()), "pid": 1}))
    assert [(a["name"], a["action"]) for a in gc_dry(tf_repo)] == [("reused", "collect")]
    wt = new(tf_repo, "reused")
    assert ls(tf_repo)["reused"]["status"] == "ready" and registry(tf_repo)["workspaces"]["reused"]["pid"] is None
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---- 24. a removal killed midway ---------------------------------------------------------------------
def test_finding_24_a_removal_killed_midway_is_finished_by_gc_or_by_the_rerun(tf_repo: Path) -> None:
    for name in ("r1", "r2"):
        new(tf_repo, name)
        r = run_tf(tf_repo, "rm", name, env={"TREEFORK_CRASH_AT": "cluster:mid-removal"}, check=False)
        assert r.rc == -signal.SIGKILL
    left = sorted(d for d in cluster_dirs(tf_repo) if ".removing-" in d)
    assert len(left) == 2 and all((home() / "clusters" / d / "data" / "PG_VERSION").exists() for d in left)
    assert {a["action"] for a in gc_dry(tf_repo)} >= {"collect"}
    assert doctor(tf_repo)["orphans"]["level"] == "fail"
    run_tf(tf_repo, "rm", "r1")  # the re-run finishes its own removal
    assert [d for d in cluster_dirs(tf_repo) if "-r1-" in d] == []
    run_tf(tf_repo, "gc")  # gc finishes the other one
    assert [d for d in cluster_dirs(tf_repo) if "-r2-" in d] == []
    assert gc_dry(tf_repo) == [] and doctor(tf_repo)["orphans"]["level"] == "ok"


# ---- 17, 25. ports across homes; a range someone holds all of -------------------------------------------
def _free_neighbour(port: int) -> int:
    from treefork.backends.local import ports

    for other in (port + 1, port - 1, port + 2, port - 2):
        registry = ports.registry_dir()
        reserved = registry is not None and (registry / str(other)).exists()
        if 1024 < other < 65535 and ports.free(other) and not reserved:
            return other
    pytest.skip(f"no free port next to {port}")


def test_finding_17_25_another_home_never_takes_a_stopped_clusters_port_and_a_full_range_is_one_line(
    tf_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import share_what_is_made_once

    mine = record(tf_repo, "<root>")["port"]
    other = _free_neighbour(mine)
    low, high = min(mine, other), max(mine, other)
    monkeypatch.setenv("TREEFORK_PORT_RANGE", f"{low}-{high}")
    run_tf(tf_repo, "server", "stop")  # a reboot, say: nothing is bound on this home's ports
    second_home = Path(tempfile.mkdtemp(prefix="treefork-test-home2-", dir=home().parent))  # another user's, say
    second_home.chmod(0o700 if os.geteuid() else 0o711)
    share_what_is_made_once(second_home)
    env = {"TREEFORK_HOME": str(second_home)}
    repo2 = make_repo(tmp_path / "two")
    try:
        run_tf(repo2, "init", "--no-import", env=env)
        assert _root_port(second_home) == other
        r = run_tf(repo2, "new", "b", env=env, check=False)  # every port of the range is now some home's
        assert r.rc == 1
        assert_one_line_error(r.err, "no free port", f"{low} and {high}", "TREEFORK_PORT_RANGE")
    finally:
        run_tf(repo2, "server", "stop", env=env, check=False)
        shutil.rmtree(second_home, ignore_errors=True)
    assert run_tf(tf_repo, "url", "root").rc == 0  # this home's cluster starts on its own port
    assert ls(tf_repo)["root"]["server_state"] == "running"


def _root_port(treefork_home: Path) -> int:
    (path,) = (treefork_home / "clusters").glob("*-root/cluster.json")
    return int(json.loads(path.read_text())["port"])


# ---- 34. records without data ---------------------------------------------------------------------------
def test_finding_34_a_cluster_whose_data_directory_is_gone_says_so_in_one_line(tf_repo: Path) -> None:
    new(tf_repo, "nodata")
    rec = record(tf_repo, "nodata")
    run_tf(tf_repo, "server", "stop")
    shutil.rmtree(cluster_dir(rec) / "data")
    r = run_tf(tf_repo, "url", "nodata", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "data directory", "missing", "treefork rm nodata")
    run_tf(tf_repo, "rm", "nodata")
    assert cluster_of(tf_repo, "nodata") is None and "nodata" not in ls(tf_repo)


def test_finding_34_a_ready_record_planted_under_this_repositorys_id_is_not_adopted(tf_repo: Path) -> None:
    """A record copied from the root's, under the id `new planted-ws` would use: adopting it would give the
    workspace the root's port and passwords."""
    from treefork.backends.local.store import cluster_id

    root = record(tf_repo, "<root>")
    cid = cluster_id(root["repo_id"], "planted-ws")
    planted = home() / "clusters" / cid
    planted.mkdir(mode=0o711)
    rec_file = planted / "cluster.json"
    rec_file.write_text(json.dumps({**root, "id": cid, "workspace": "planted-ws", "parent": root["id"]}))
    rec_file.chmod(0o600)
    r = run_tf(tf_repo, "new", "planted-ws", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "already exists")
    env = tf_repo.parent / f"{tf_repo.name}.worktrees" / "planted-ws" / ".env"
    assert not env.exists() or f":{root['port']}/" not in env.read_text(), "the root's port and password"
    assert rec_file.exists(), "and nothing planted is removed"
    assert gc_dry(tf_repo) == [] or all(a["db_id"] != cid for a in gc_dry(tf_repo) if a["action"] == "collect")


# ---- 39. a hung parent ----------------------------------------------------------------------------------
def test_finding_39_new_from_a_stopped_parent_fails_at_once_naming_its_pid(tf_repo: Path) -> None:
    root = record(tf_repo, "<root>")
    pid = postmaster_pid(root)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        r = run_tf(tf_repo, "new", "e2", check=False)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.rc == 1
    assert_one_line_error(r.err, f"pid {pid}", "stopped", f"kill -CONT {pid}")
    assert new(tf_repo, "e2").is_dir()  # resumed, it forks


# ---- round 1's 15: a lost record is refused before anything is removed ------------------------------------
def test_round1_finding_15_rm_refuses_a_lost_record_before_it_removes_the_worktree(tf_repo: Path) -> None:
    wt = new(tf_repo, "lostrec")
    rec_file = cluster_dir(record(tf_repo, "lostrec")) / "cluster.json"
    rec_file.rename(rec_file.with_suffix(".lost"))
    r = run_tf(tf_repo, "rm", "lostrec", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "lost treefork's record")
    assert wt.is_dir() and (wt / ".env").exists(), "the worktree is kept"
    assert registry(tf_repo)["workspaces"]["lostrec"]["status"] == "ready"
    rec_file.with_suffix(".lost").rename(rec_file)
    run_tf(tf_repo, "rm", "lostrec")
    assert not wt.exists() and "lostrec" not in ls(tf_repo)
