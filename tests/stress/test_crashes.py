"""Crashes: SIGKILL treefork at every recorded step (and the PostgreSQL server itself); the next command
(a re-run, `rm` or `gc`) must leave the registry, git and the backend in exact agreement."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, run_tf
from testing.checks import assert_consistent, assert_empty, assert_nothing_left
from testing.cli import assert_one_line_error, ls_json, popen_tf
from testing.repo import git_worktrees
from testing.server import cluster_records, home, marked_databases

pytestmark = pytest.mark.stress

NEW_POINTS = ["new:after-worktree", "new:after-db", "new:after-env", "new:after-registry"]
RM_POINTS = ["rm:after-intent", "rm:after-worktree", "rm:after-db"]


def _crash(repo: Path, *args: str, point: str) -> None:
    r = run_tf(repo, *args, env={"TREEFORK_CRASH_AT": point}, check=False)
    assert r.rc == -signal.SIGKILL, f"expected SIGKILL at {point}, got rc {r.rc}: {r.err}"


@pytest.mark.parametrize(
    "point,recovery", [(p, "rerun") for p in NEW_POINTS] + [("new:after-db", "rm"), ("new:after-env", "rm")]
)
def test_crash_during_new(tf_repo: Path, main_env: bytes, point: str, recovery: str) -> None:
    _crash(tf_repo, "new", "crashy", point=point)
    if recovery == "rerun":
        run_tf(tf_repo, "new", "crashy")
        rows = assert_consistent(tf_repo, main_env)
        assert [r["name"] for r in rows] == ["crashy"]
        # the database is usable, with the URL the env file gives
        with psycopg.connect(db_url(Path(rows[0]["path"])), autocommit=True, connect_timeout=10) as conn:
            assert (
                conn.execute("SELECT current_database()").fetchone()[0] + "@" + str(conn.info.port)
                == rows[0]["db_branch"]
            )
        run_tf(tf_repo, "rm", "crashy")
    else:
        # giving up on it instead: rm (forced: the half-made worktree may be anything) then gc
        run_tf(tf_repo, "rm", "crashy", "--force")
        run_tf(tf_repo, "gc")
    assert_empty(tf_repo)
    assert (tf_repo / ".env").read_bytes() == main_env


@pytest.mark.parametrize("point", RM_POINTS)
@pytest.mark.parametrize("recovery", ["rerun", "gc"])
def test_crash_during_rm(tf_repo: Path, main_env: bytes, point: str, recovery: str) -> None:
    run_tf(tf_repo, "new", "doomed")
    run_tf(tf_repo, "new", "bystander")
    _crash(tf_repo, "rm", "doomed", point=point)
    if recovery == "rerun":
        run_tf(tf_repo, "rm", "doomed")
    else:
        run_tf(tf_repo, "gc")
        names = {r["name"] for r in ls_json(tf_repo)}
        if "doomed" in names:
            # gc only drops what is provably gone: the worktree is still there, so the entry stays,
            # consistent, and `rm` finishes the job
            assert point == "rm:after-intent", names
            assert_consistent(tf_repo, main_env, allow_not_ready=True)
            run_tf(tf_repo, "rm", "doomed")
    rows = assert_consistent(tf_repo, main_env)
    assert [r["name"] for r in rows] == ["bystander"], rows
    run_tf(tf_repo, "rm", "bystander")
    assert_empty(tf_repo)


def test_random_sigkill_during_new_then_rerun(tf_repo: Path, main_env: bytes) -> None:
    """SIGKILL at arbitrary moments (not only the named points), then re-run: always consistent."""
    rnd = random.Random(1234)
    for i in range(4):
        name = f"rk-{i}"
        p = popen_tf(tf_repo, "new", name)
        time.sleep(rnd.uniform(0.3, 1.6))
        p.kill()
        p.communicate(timeout=60)
        r = run_tf(tf_repo, "new", name, check=False)
        if r.rc != 0:
            # the killed client's CREATE DATABASE may still be finishing server-side: a clear "retry"
            assert r.rc == 1 and "retry" in r.err, r.err
            time.sleep(1)
            run_tf(tf_repo, "new", name)
    rows = assert_consistent(tf_repo, main_env)
    assert {r["name"] for r in rows} == {f"rk-{i}" for i in range(4)}
    run_tf(tf_repo, "rm", *[r["name"] for r in rows])
    assert_empty(tf_repo)


def test_rollback_on_injected_failures_leaves_nothing(tf_repo: Path, main_env: bytes) -> None:
    for point in NEW_POINTS[:3]:
        r = run_tf(tf_repo, "new", "failing", env={"TREEFORK_FAIL_AT": point}, check=False)
        assert r.rc == 1
        assert_one_line_error(r.err, f"injected failure at {point}")
        assert_empty(tf_repo)
        assert_nothing_left(tf_repo, "failing")
    assert (tf_repo / ".env").read_bytes() == main_env
    run_tf(tf_repo, "new", "failing")  # a re-run without the failure succeeds
    assert [r["name"] for r in assert_consistent(tf_repo, main_env)] == ["failing"]


def _postmaster_pid(repo: Path, workspace: str) -> int:
    rec = next(r for r in cluster_records(repo) if r["workspace"] == workspace)
    return int((home() / "clusters" / rec["id"] / "data" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_postgres_then_next_command_restarts_it_and_data_survives(tf_repo: Path, main_env: bytes) -> None:
    run_tf(tf_repo, "new", "keeper")
    wt = Path(ls_json(tf_repo)[0]["path"])
    with psycopg.connect(db_url(wt), autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (id int primary key, v text)")
        conn.execute("INSERT INTO precious SELECT g, 'row ' || g FROM generate_series(1, 500) g")
    pid = _postmaster_pid(tf_repo, "keeper")
    os.kill(pid, signal.SIGKILL)
    try:
        deadline = time.time() + 20
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
        # the next command that needs it notices the cluster is gone and brings it back (after crash recovery)
        r = run_tf(tf_repo, "new", "after-crash", "--from", "keeper", check=False)
        assert r.rc == 0, r.err
    finally:
        run_tf(tf_repo, "server", "start", check=False)
    new_pid = _postmaster_pid(tf_repo, "keeper")
    assert new_pid != pid and _alive(new_pid)
    with psycopg.connect(db_url(wt), autocommit=True) as conn:
        assert conn.execute("SELECT count(*), max(v) FROM precious").fetchone() == (500, "row 99")
    # the fork made after the restart has every committed row of its parent
    wt2 = Path(next(r["path"] for r in ls_json(tf_repo) if r["name"] == "after-crash"))
    with psycopg.connect(db_url(wt2), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM precious").fetchone() == (500,)
    assert_consistent(tf_repo, main_env)
    run_tf(tf_repo, "rm", "after-crash", "keeper")
    assert_empty(tf_repo)
    assert git_worktrees(tf_repo) == [] and marked_databases(tf_repo) == []


def test_interrupt_at_startup_never_prints_a_traceback(tf_repo: Path) -> None:
    failures = []
    for i in range(40):
        p = subprocess.Popen(
            [sys.executable, "-m", "treefork", "ls"],
            cwd=tf_repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(0.002 * i)  # spread over the first ~80 ms: startup, imports, the command itself
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        # ^C inside the interpreter's own startup (site.py, runpy finding the package) comes before any
        # treefork code can run: only a traceback through treefork's own files is treefork's
        if "KeyboardInterrupt" in err and "/treefork/" in err:
            failures.append((i, p.returncode, err))
    assert failures == []
