"""reset, diff, run and merge on the local backend: real git, the real CLI, the real embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.cli import new, popen_tf
from testing.waits import wait_until


def _root_url(repo: Path) -> str:
    return run_tf(repo, "url", "root").out.strip()


def _sql(url: str, *statements: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[tuple] = []
        for s in statements:
            cur = conn.execute(s)
            rows = cur.fetchall() if cur.description else rows
        return rows


def _columns(url: str, table: str) -> list[str]:
    rows = _sql(url, f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY 1")
    return [r[0] for r in rows]


@pytest.fixture
def users_repo(tf_repo: Path) -> Path:
    _sql(
        _root_url(tf_repo), "CREATE TABLE users (id int PRIMARY KEY, name text)", "INSERT INTO users VALUES (1, 'ada')"
    )
    return tf_repo


def test_diff_shows_column_index_and_function_and_hides_noise(users_repo: Path) -> None:
    a = new(users_repo, "a")
    same = run_tf(users_repo, "diff", "a", check=False)
    assert same.rc == 0 and same.out == "", same.text
    url = db_url(a)
    _sql(url, "GRANT SELECT ON users TO PUBLIC", "COMMENT ON TABLE users IS 'noise'")
    noise = run_tf(users_repo, "diff", "a", check=False)
    assert noise.rc == 0 and noise.out == "", noise.text  # privileges and comments are not schema changes
    _sql(
        url,
        "ALTER TABLE users ADD COLUMN email text",
        "CREATE INDEX users_email_idx ON users (email)",
        "CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql AS $$ SELECT upper(t) $$",
    )
    changed = run_tf(users_repo, "diff", "a", check=False)
    assert changed.rc == 4  # exitcodes.FOUND
    assert "+    email text" in changed.out
    assert "+CREATE INDEX users_email_idx ON public.users USING btree (email);" in changed.out
    assert "+CREATE FUNCTION public.shout(t text)" in changed.out
    for noise_word in ("GRANT", "COMMENT", "OWNER", "SET ", "\\restrict"):
        assert noise_word not in changed.out
    data = json.loads(run_tf(users_repo, "diff", "a", "--json", check=False).out)
    assert {"TABLE public.users", "INDEX public.users_email_idx", "FUNCTION public.shout(text)"} <= set(
        data["objects"]
    ), data
    assert data["tables"] == ["public.users"]


def test_diff_all_shows_tables_changed_by_two_workspaces(users_repo: Path) -> None:
    a, b = new(users_repo, "a"), new(users_repo, "b")
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN email text")
    _sql(db_url(b), "ALTER TABLE users ADD COLUMN phone text")
    r = run_tf(users_repo, "diff", "--all", "--json", check=False)
    assert r.rc == 4
    tables = {d["name"]: d["tables"] for d in json.loads(r.out)}
    assert tables == {"a": ["public.users"], "b": ["public.users"]}


def test_run_loads_the_env_and_passes_the_exit_code(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    show = "import os; print(os.getcwd()); print(os.environ['DATABASE_URL'])"
    r = run_tf(tf_repo, "run", "a", "--", sys.executable, "-c", show)
    cwd, url = r.out.splitlines()
    assert Path(cwd).resolve() == a.resolve() and url == db_url(a)
    assert run_tf(tf_repo, "run", "a", "--", sys.executable, "-c", "raise SystemExit(7)", check=False).rc == 7


def _commit_file(where: Path, name: str, text: str) -> None:
    (where / name).write_text(text)
    git(where, "add", ".")
    git(where, "commit", "-q", "-m", f"add {name}")


def test_merge_without_migration_merges_and_removes(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    _commit_file(a, "feature.txt", "work\n")
    result = json.loads(run_tf(a, "merge", "a", "--json").out)  # from inside the workspace itself
    assert result["parent"] == "root" and result["parent_branch"] == "main" and result["removed"] is True
    assert result["head_after"] == git(tf_repo, "rev-parse", "HEAD").stdout.strip() != result["head_before"]
    assert (tf_repo / "feature.txt").read_text() == "work\n"
    assert not a.exists() and "a" not in json.loads(run_tf(tf_repo, "ls", "--json").out)[-1]["name"]
    assert "a" not in git(tf_repo, "branch", "--format=%(refname:short)").stdout.split()


def test_merge_conflict_leaves_everything(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    (a / "README.md").write_text("agent\n")
    git(a, "commit", "-q", "-am", "agent")
    (tf_repo / "README.md").write_text("human\n")
    git(tf_repo, "commit", "-q", "-am", "human")
    head = git(tf_repo, "rev-parse", "HEAD").stdout
    r = run_tf(tf_repo, "merge", "a", check=False)
    assert r.rc == 1 and "conflicts in README.md" in r.err
    assert git(tf_repo, "rev-parse", "HEAD").stdout == head and git(tf_repo, "status", "--porcelain").stdout == ""
    assert (tf_repo / "README.md").read_text() == "human\n" and (a / "README.md").read_text() == "agent\n"


MIGRATION = """import os, sys, time, pathlib, psycopg
from urllib.parse import urlsplit
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    c.execute("ALTER TABLE users ADD COLUMN email text")
    c.execute("UPDATE users SET name = 'clobbered'")
mode = os.environ.get("MIGRATION_MODE", "ok")
if mode.endswith("-on-parent"):  # that mode on the parent's own database; the fork's run passes
    on_parent = str(urlsplit(os.environ["DATABASE_URL"]).port) == os.environ.get("PARENT_PORT")
    mode = mode.removesuffix("-on-parent") if on_parent else "ok"
if mode == "hang":  # say so, then wait for MARKER.go to say the exit: ok or fail
    pathlib.Path(os.environ["MARKER"]).write_text("started")
    go = pathlib.Path(os.environ["MARKER"] + ".go")
    give_up = time.monotonic() + 120
    while not go.exists() and time.monotonic() < give_up:
        time.sleep(0.05)
    mode = go.read_text() if go.exists() else "fail"
sys.exit(0 if mode == "ok" else 4)
"""


def _migration_repo(repo: Path) -> Path:
    (repo / "migrate.py").write_text(MIGRATION)
    (repo / "treefork.toml").write_text(f"migrate = [{json.dumps(sys.executable)}, 'migrate.py']\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "migration")
    a = new(repo, "a")
    _commit_file(a, "feature.txt", "work\n")
    return a


def _assert_parent_intact(repo: Path, head: str, a: Path) -> None:
    assert git(repo, "rev-parse", "HEAD").stdout == head and not (repo / "feature.txt").exists()
    url = _root_url(repo)
    assert _columns(url, "users") == ["id", "name"]
    assert _sql(url, "SELECT id, name FROM users") == [(1, "ada")]  # read back: the data is as it was
    assert a.is_dir()


def test_merge_with_migration_migrates_the_parent(users_repo: Path) -> None:
    a = _migration_repo(users_repo)
    run_tf(users_repo, "merge", "a")
    assert "email" in _columns(_root_url(users_repo), "users")
    assert (users_repo / "feature.txt").exists() and not a.exists()


def test_failing_migration_leaves_parent_code_and_data(users_repo: Path) -> None:
    a = _migration_repo(users_repo)
    head = git(users_repo, "rev-parse", "HEAD").stdout
    r = run_tf(users_repo, "merge", "a", env={"MIGRATION_MODE": "fail"}, check=False)
    assert r.rc == 1 and "exit code 4" in r.err
    _assert_parent_intact(users_repo, head, a)


def test_interrupted_migration_leaves_parent_code_and_data(users_repo: Path, tmp_path: Path) -> None:
    a = _migration_repo(users_repo)
    head = git(users_repo, "rev-parse", "HEAD").stdout
    marker = tmp_path / "started"
    env = {"MIGRATION_MODE": "hang", "MARKER": str(marker)}
    p = popen_tf(users_repo, "merge", "a", env=env, session=True)
    wait_until(marker.exists, f"{marker} appearing", timeout=120, process=p)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    _assert_parent_intact(users_repo, head, a)


def test_reset_brings_the_data_back_with_the_same_url(users_repo: Path) -> None:
    a = new(users_repo, "a")
    url = db_url(a)
    _sql(url, "DELETE FROM users", "ALTER TABLE users ADD COLUMN junk int")
    run_tf(users_repo, "reset", "a")
    assert db_url(a) == url
    assert _sql(url, "SELECT id, name FROM users") == [(1, "ada")] and _columns(url, "users") == ["id", "name"]


def test_merge_warns_when_another_workspace_changed_the_same_tables(users_repo: Path) -> None:
    a, b = new(users_repo, "a"), new(users_repo, "b")
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN email text")
    _sql(db_url(b), "ALTER TABLE users ADD COLUMN phone text")
    _commit_file(a, "a.txt", "a\n")
    r = run_tf(users_repo, "merge", "a", "--keep")
    assert "workspace b also changed public.users" in r.err
    assert a.is_dir() and (users_repo / "a.txt").exists()  # --keep keeps it


def _parent_port(repo: Path) -> str:
    return str(urlsplit(_root_url(repo)).port)


def test_a_failing_merge_keeps_the_parents_clients_and_their_open_transaction(users_repo: Path) -> None:
    a = _migration_repo(users_repo)
    head = git(users_repo, "rev-parse", "HEAD").stdout
    with psycopg.connect(_root_url(users_repo)) as client:  # not autocommit: its transaction stays open
        pid = client.execute("SELECT pg_backend_pid()").fetchone()
        client.execute("INSERT INTO users VALUES (2, 'bob')")
        r = run_tf(users_repo, "merge", "a", env={"MIGRATION_MODE": "fail"}, check=False)
        assert r.rc == 1 and "on a fork of root's database" in r.err and "never touched" in r.err, r.err
        assert "disconnected" not in r.err
        # the same connection, in the same transaction, still sees its own uncommitted row
        assert client.execute("SELECT pg_backend_pid()").fetchone() == pid
        assert client.execute("SELECT id, name FROM users ORDER BY id").fetchall() == [(1, "ada"), (2, "bob")]
        client.commit()
    url = _root_url(users_repo)
    assert _columns(url, "users") == ["id", "name"]  # read back: the parent's schema and data as they were
    assert _sql(url, "SELECT id, name FROM users ORDER BY id") == [(1, "ada"), (2, "bob")]
    assert git(users_repo, "rev-parse", "HEAD").stdout == head and not (users_repo / "feature.txt").exists()
    assert a.is_dir() and json.loads(run_tf(users_repo, "gc", "--dry-run", "--json").out)["actions"] == []


def test_merge_forks_the_parent_for_its_trial_while_it_looks_for_collisions_and_merges(
    users_repo: Path, tmp_path: Path
) -> None:
    """The trial fork (the longest step before the migration: a copy of the parent's cluster) is made in a
    thread from the start, beside the collision check and the git merge (TREEFORK_TIMING's steps, in order)."""
    _migration_repo(users_repo)
    log = tmp_path / "timing"
    run_tf(users_repo, "merge", "a", env={"MIGRATION_MODE": "fail", "TREEFORK_TIMING": str(log)}, check=False)
    steps = [line.split() for line in log.read_text().splitlines()]
    order = [fields[2] for fields in steps]
    assert {f[1] for f in steps if f[2] == "fork:begin"} != {"MainThread"}, "the fork runs in a thread of its own"
    assert order.index("fork:begin") < order.index("merge:after-git") < order.index("merge:after-fork"), order


def test_gc_during_a_merges_migration_keeps_its_snapshot(users_repo: Path, tmp_path: Path) -> None:
    a = _migration_repo(users_repo)
    head = git(users_repo, "rev-parse", "HEAD").stdout
    marker = tmp_path / "started"
    env = {
        "MIGRATION_MODE": "hang-on-parent",
        "MARKER": str(marker),
        "PARENT_PORT": _parent_port(users_repo),
    }
    p = popen_tf(users_repo, "merge", "a", env=env, session=True)
    wait_until(marker.exists, f"{marker} appearing", timeout=120, process=p)  # migrating the parent itself
    assert json.loads(run_tf(users_repo, "gc", "--json").out)["actions"] == []
    (tmp_path / "started.go").write_text("fail")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "passed on a fork" in err and "failed with exit code 4 on root's own" in err, err
    assert "clients are disconnected" in err and "write transaction(s)" in err  # said before the restore
    _assert_parent_intact(users_repo, head, a)
