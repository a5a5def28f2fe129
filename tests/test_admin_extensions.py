"""Extensions the workspace's role (no superuser) may not create, made for it by treefork's admin
(backends/local/admin_extensions.py): treefork.toml's `extensions` reach a repository after `init` through
`treefork sync` and `doctor --fix`; and nothing of treefork's own goes into an app's schema, whose dump
(Rails' `db/structure.sql`) must load on any other server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from conftest import PgServer, db_url, git, run_tf, server_clusters
from testing.cli import assert_one_line_error, new
from testing.server import cluster_of


def _root_url(repo: Path) -> str:
    return run_tf(repo, "url", "root").out.strip()


def _role(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    return conn


def _commit_config(repo: Path, text: str) -> None:
    (repo / "treefork.toml").write_text(text)
    git(repo, "add", "treefork.toml")
    git(repo, "commit", "-q", "-m", "treefork.toml")


def _extensions_check(repo: Path) -> dict[str, Any]:
    checks = json.loads(run_tf(repo, "doctor", "--json", check=False).out)["checks"]
    found = [c for c in checks if c["name"] == "extensions"]
    assert len(found) == 1, checks
    return dict(found[0])


def _has(url: str, extension: str) -> bool:
    with _role(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = %s", (extension,)).fetchone()
    return row == (1,)


def test_an_extension_listed_after_init_reaches_the_root_and_every_workspace_through_sync(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    _commit_config(tf_repo, 'extensions = ["dblink"]\n')  # untrusted in the wheel, as PostGIS is elsewhere
    check = _extensions_check(tf_repo)
    assert check["level"] == "fail" and check["hint"] == "treefork sync", check
    assert "extension dblink listed but missing in the root (database app)" in check["message"]
    assert "workspace a (database template1)" in check["message"]
    run_tf(tf_repo, "server", "stop")  # a stopped cluster is started, as by any command that needs it
    first = run_tf(tf_repo, "sync")
    for where in ("the root (database app)", "the root (database template1)", "workspace a (database app)"):
        assert f"created extension dblink in {where}" in first.text, first.text
    root_url = _root_url(tf_repo)
    for url in (root_url, db_url(a)):
        assert _has(url, "dblink")
        with _role(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")  # an app's migration: there already
            conn.execute("CREATE DATABASE test_app")  # a test runner's: template1 has it too
        assert _has(url.rsplit("/", 1)[0] + "/test_app", "dblink")
    second = run_tf(tf_repo, "sync")
    assert second.rc == 0 and "created" not in second.text
    assert "extensions dblink: in the root and every workspace" in second.text
    assert _extensions_check(tf_repo)["level"] == "ok"
    run_tf(tf_repo, "server", "stop")
    run_tf(a, "sync", "--quiet")  # an agent's session hook: all made and recorded, so nothing is started
    assert not any(c["running"] for c in server_clusters(tf_repo))
    run_tf(tf_repo, "rm", "a")


def test_doctor_fix_makes_what_treefork_toml_lists_after_init(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    _commit_config(tf_repo, 'extensions = ["dblink"]\n')
    check = _extensions_check(tf_repo)
    assert "extension dblink listed but missing in workspace a (database app)" in check["message"], check
    fixed = run_tf(tf_repo, "doctor", "--fix", check=False)
    assert "[ fix] extensions: treefork sync" in fixed.text, fixed.text
    assert _extensions_check(tf_repo)["level"] == "ok"
    with _role(db_url(a)) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")  # an app's migration: there already
    run_tf(tf_repo, "rm", "a")


def test_an_extension_the_binaries_lack_is_a_one_line_error_and_nothing_is_made(tf_repo: Path) -> None:
    _commit_config(tf_repo, 'extensions = ["dblink", "postgis"]\n')
    r = run_tf(tf_repo, "sync", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "postgis", "treefork.toml")
    assert not _has(_root_url(tf_repo), "dblink")


def test_a_workspaces_schema_dump_holds_nothing_of_treeforks_and_loads_on_another_server(
    tf_repo: Path, pg_server: PgServer
) -> None:
    """What Rails writes to db/structure.sql after each migration (`pg_dump --schema-only -x -O`), from a workspace
    with an extension treefork made for it, loads with `psql -v ON_ERROR_STOP=1` (as `db:structure:load` does)
    into an empty database of another cluster: nothing in it is treefork's own (no event trigger, no function)."""
    _commit_config(tf_repo, 'extensions = ["dblink"]\n')
    run_tf(tf_repo, "sync")
    a = new(tf_repo, "a")
    with _role(db_url(a)) as conn:
        conn.execute("CREATE TABLE posts (id serial PRIMARY KEY, title text NOT NULL)")
    rec = cluster_of(tf_repo, "a")
    assert rec is not None
    from treefork.backends.local.dist import wheel_bin_dir

    bins = wheel_bin_dir()
    dump = subprocess.run(
        [str(bins / "pg_dump"), "--schema-only", "--no-privileges", "--no-owner", db_url(a)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "posts" in dump and "dblink" in dump
    assert "EVENT TRIGGER" not in dump and "treefork" not in dump.lower()
    target = pg_server.fresh_database("structure_load")  # another server, its owner loading (as in CI)
    loaded = subprocess.run(
        [str(bins / "psql"), "-v", "ON_ERROR_STOP=1", "-q", "-X", "-d", target],
        input=dump,
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    run_tf(tf_repo, "rm", "a")


CREATE = "import os, sys, psycopg; psycopg.connect(os.environ['DATABASE_URL'], autocommit=True).execute(sys.argv[1])"


def test_run_names_the_fix_for_an_extension_the_role_may_not_create(tf_repo: Path) -> None:
    """PostgreSQL's refusal is what the command prints (nothing of treefork's is in the database to rephrase
    it); `treefork run` adds the line that says what to do here, read from the cluster's log."""
    new(tf_repo, "a")
    r = run_tf(tf_repo, "run", "a", "--", sys.executable, "-c", CREATE, "CREATE EXTENSION dblink", check=False)
    assert r.rc != 0 and 'permission denied to create extension "dblink"' in r.err
    assert 'warning: extension "dblink" needs a superuser' in r.err, r.err
    assert 'extensions = ["dblink"]' in r.err and "treefork sync" in r.err
    ok = run_tf(tf_repo, "run", "a", "--", sys.executable, "-c", CREATE, "CREATE EXTENSION IF NOT EXISTS citext")
    assert "warning" not in ok.err, "a command that passed gets no advice, whatever the log held before"
    weird = 'CREATE EXTENSION "evil\x1b]0;owned\x07"'
    r = run_tf(tf_repo, "run", "a", "--", sys.executable, "-c", CREATE, weird, check=False)
    assert (
        "is not in PostgreSQL 18" in r.err
        and "\\x1b]0;owned\\x07" in r.err
        and "\x1b" not in r.err.split("warning")[-1]
    )
    run_tf(tf_repo, "rm", "a")


def test_a_merge_whose_migration_creates_a_missing_extension_names_the_fix(tf_repo: Path) -> None:
    (tf_repo / "migrate.py").write_text(
        "import os, sys, psycopg\n"
        "try:\n"
        "    psycopg.connect(os.environ['DATABASE_URL'], autocommit=True).execute('CREATE EXTENSION timescaledb')\n"
        "except psycopg.Error as e:\n"
        "    sys.exit(str(e))\n"
    )
    git(tf_repo, "add", "migrate.py")
    _commit_config(tf_repo, f'migrate = ["{sys.executable}", "migrate.py"]\n')
    a = new(tf_repo, "a")
    git(a, "commit", "-q", "--allow-empty", "-m", "a")
    r = run_tf(tf_repo, "merge", "a", check=False)
    assert r.rc == 1 and "on a fork of root's database" in r.err, r.err
    assert 'extension "timescaledb" is not available' in r.err  # PostgreSQL's words, from the migration
    last = r.err.strip().splitlines()[-1]
    assert 'extension "timescaledb" is not in PostgreSQL 18' in last and 'postgres = "<its major>"' in last, last
    assert a.is_dir(), "the workspace is kept"
