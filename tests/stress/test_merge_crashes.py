"""Crashes in `merge` and `reset`: SIGKILL at every step the crash-point mechanism marks, then the recovery
docs/lifecycle.md gives (`treefork merge NAME`, `treefork merge --abort NAME`, `treefork doctor --fix`,
`treefork reset NAME`), then the consistency checker: the parent's code and data read back either merged
and migrated or as before, and nothing left behind (no fork, snapshot, staging cluster, `data.old` or intent).
SIGTERM and SIGHUP mid-migration roll back as ^C does."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.checks import assert_consistent, assert_empty
from testing.cli import new, popen_tf
from testing.repo import registry
from testing.server import home, repo_id
from testing.waits import wait_until

pytestmark = pytest.mark.stress

MIGRATION = """import os, sys, time, pathlib, psycopg
from urllib.parse import urlsplit
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    c.execute("ALTER TABLE users ADD COLUMN email text")
    c.execute("UPDATE users SET name = 'clobbered'")
mode = os.environ.get("MIGRATION_MODE", "ok")
if mode.endswith("-on-parent"):
    on_parent = str(urlsplit(os.environ["DATABASE_URL"]).port) == os.environ.get("PARENT_PORT")
    mode = mode.removesuffix("-on-parent") if on_parent else "ok"
if mode == "sleep-fail":  # the report's repro: sleeps, then fails
    pathlib.Path(os.environ["MARKER"]).write_text("started")
    time.sleep(30)
sys.exit(0 if mode == "ok" else 4)
"""

# every step of a merge that passes, in order
MERGE_POINTS = [
    "merge:after-git",
    "fork:after-copy",  # the trial fork's own copy
    "merge:after-fork",
    "merge:after-fork-migrate",
    "merge:after-fork-drop",
    "merge:after-snapshot",
    "merge:after-migrate",
    "merge:after-migrated",
    "merge:after-drop-snapshot",
]
# every step of a restore (a migration that passed on the fork and failed on the parent), and of a reset
RESET_POINTS = [
    "reset:after-copy",
    "reset:after-rekey",
    "reset:after-stop",
    "reset:after-move-old",
    "reset:after-move-new",
    "reset:after-swap",
]
RESTORE_POINTS = ["merge:before-restore", *RESET_POINTS, "merge:after-restore"]
MIGRATED_AT = MERGE_POINTS.index("merge:after-migrated")  # from here on the parent is migrated


def _root_url(repo: Path) -> str:
    return run_tf(repo, "url", "root").out.strip()


def _sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Runs each statement; the last one's rows."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows: list[tuple[object, ...]] = []
        for s in statements:
            cur = conn.execute(s)
            rows = cur.fetchall() if cur.description else []
        return rows


@pytest.fixture
def merging(tf_repo: Path) -> Path:
    """A root with a users table, `migrate` set, and workspace a with a commit to merge."""
    _sql(
        _root_url(tf_repo), "CREATE TABLE users (id int PRIMARY KEY, name text)", "INSERT INTO users VALUES (1, 'ada')"
    )
    (tf_repo / "migrate.py").write_text(MIGRATION)
    (tf_repo / "treefork.toml").write_text(f"migrate = [{json.dumps(sys.executable)}, 'migrate.py']\n")
    git(tf_repo, "add", ".")
    git(tf_repo, "commit", "-q", "-m", "migration")
    a = new(tf_repo, "a")
    (a / "feature.txt").write_text("work\n")
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "feature")
    return tf_repo


def _crash(repo: Path, *args: str, point: str, env: dict[str, str] | None = None) -> None:
    r = run_tf(repo, *args, env={"TREEFORK_CRASH_AT": point, **(env or {})}, check=False)
    assert r.rc == -signal.SIGKILL, f"expected SIGKILL at {point}, got rc {r.rc}: {r.err}"


def _nothing_left(repo: Path) -> None:
    """No merge intent, no fork or snapshot or staging cluster, no swapped-out data directory; the root opens."""
    assert "merges" not in registry(repo)
    clusters = home() / "clusters"
    names = sorted(p.name for p in clusters.glob(f"{repo_id(repo)}-*"))
    assert not [n for n in names if "merge-trial" in n or "snapshot" in n or n.endswith(".reset")], names
    assert not list(clusters.glob(f"{repo_id(repo)}-*/data.old"))
    assert _sql(_root_url(repo), "SELECT 1") == [(1,)]


def _assert_merged(repo: Path, head: str) -> None:
    url = _root_url(repo)
    assert _sql(url, "SELECT id, name, email FROM users") == [(1, "clobbered", None)]  # migrated once
    assert git(repo, "rev-parse", "HEAD").stdout != head and (repo / "feature.txt").read_text() == "work\n"
    _nothing_left(repo)
    assert_empty(repo)


def _assert_as_before(repo: Path, head: str) -> None:
    url = _root_url(repo)
    cols = _sql(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' ORDER BY 1")
    assert cols == [("id",), ("name",)] and _sql(url, "SELECT id, name FROM users") == [(1, "ada")]
    assert git(repo, "rev-parse", "HEAD").stdout == head and not (repo / "feature.txt").exists()
    assert git(repo, "status", "--porcelain").stdout == ""
    _nothing_left(repo)
    assert [r["name"] for r in assert_consistent(repo)] == ["a"]


@pytest.mark.parametrize("point", MERGE_POINTS)
@pytest.mark.parametrize("recovery", ["merge", "abort", "doctor"])
def test_kill_9_during_merge_then_recover(merging: Path, point: str, recovery: str) -> None:
    head = git(merging, "rev-parse", "HEAD").stdout
    _crash(merging, "merge", "a", point=point)
    assert json.loads(run_tf(merging, "gc", "--dry-run", "--json").out)["actions"] == []  # gc keeps all of it
    if recovery == "merge":
        run_tf(merging, "merge", "a")  # finishes it, or undoes it and merges again
        _assert_merged(merging, head)
        return
    if recovery == "abort":
        run_tf(merging, "merge", "--abort", "a")
    else:
        assert run_tf(merging, "doctor", check=False).rc != 0  # it reports the interrupted merge
        run_tf(merging, "doctor", "--fix", check=False)
    migrated = MERGE_POINTS.index(point) >= MIGRATED_AT
    # abort undoes while the snapshot exists (until it is dropped); doctor completes once the parent migrated
    completes = point == "merge:after-drop-snapshot" if recovery == "abort" else migrated
    if completes:
        _assert_merged(merging, head)
    else:
        _assert_as_before(merging, head)


@pytest.mark.parametrize("point", RESTORE_POINTS)
@pytest.mark.parametrize("recovery", ["abort", "merge"])
def test_kill_9_during_a_restore_never_locks_the_root_out(merging: Path, point: str, recovery: str) -> None:
    head = git(merging, "rev-parse", "HEAD").stdout
    env = {"MIGRATION_MODE": "fail-on-parent", "PARENT_PORT": str(urlsplit(_root_url(merging)).port)}
    _crash(merging, "merge", "a", point=point, env=env)
    assert _sql(_root_url(merging), "SELECT 1") == [(1,)]  # `url` starts the root; its own passwords open it
    if recovery == "abort":
        run_tf(merging, "merge", "--abort", "a")
        _assert_as_before(merging, head)
    else:
        run_tf(merging, "merge", "a")  # the restore finished, then the merge again (passing this time)
        _assert_merged(merging, head)


@pytest.mark.parametrize("point", RESET_POINTS)
def test_kill_9_during_reset_then_reset_again(tf_repo: Path, point: str) -> None:
    _sql(_root_url(tf_repo), "CREATE TABLE t (v text)", "INSERT INTO t VALUES ('root')")
    a = new(tf_repo, "a")
    url = db_url(a)
    _sql(url, "UPDATE t SET v = 'mine'")
    _crash(tf_repo, "reset", "a", point=point)
    run_tf(tf_repo, "url", "a")  # any command starts it again (a stopped one too)
    assert _sql(url, "SELECT v FROM t")[0][0] in ("root", "mine")  # a's own URL opens it, old data or new
    run_tf(tf_repo, "reset", "a")
    assert _sql(url, "SELECT v FROM t") == [("root",)] and db_url(a) == url
    _nothing_left(tf_repo)
    assert [r["name"] for r in assert_consistent(tf_repo)] == ["a"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_mid_migration_rolls_back(merging: Path, tmp_path: Path, sig: signal.Signals) -> None:
    """The report's repro: a migration that sleeps then fails, and treefork told to stop while it runs on the
    parent (a supervisor's SIGTERM, a closed terminal's SIGHUP, sent to treefork alone)."""
    head = git(merging, "rev-parse", "HEAD").stdout
    marker = tmp_path / "started"
    port = str(urlsplit(_root_url(merging)).port)
    env = {"MIGRATION_MODE": "sleep-fail-on-parent", "PARENT_PORT": port, "MARKER": str(marker)}
    p = popen_tf(merging, "merge", "a", env=env, session=True)
    wait_until(marker.exists, f"{marker} appearing", timeout=120, process=p)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err and "clients are disconnected" in err
    _assert_as_before(merging, head)
