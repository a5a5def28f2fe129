"""The CREATE EXTENSION guard (backends/local/extension_guard.py) on the embedded PostgreSQL: the workspace's
role, no superuser, running `CREATE EXTENSION` of one it may not create gets one line naming treefork's fix;
every other CREATE EXTENSION runs as PostgreSQL would; the role can neither drop nor disable the guard; and
treefork.toml's extensions reach a repository after `init` through `treefork sync` and `doctor --fix`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import db_url, git, make_repo, run_tf, server_clusters
from testing.cli import assert_one_line_error, new
from testing.server import admin_conn, cluster_of, root_cluster


def _root_url(repo: Path) -> str:
    return run_tf(repo, "url", "root").out.strip()


def _role(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    return conn


def _error_of(conn: psycopg.Connection[Any], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    return caught.value


def test_an_untrusted_or_missing_extension_names_the_fix_and_the_rest_run_as_before(tf_repo: Path) -> None:
    with _role(_root_url(tf_repo)) as conn:
        untrusted = _error_of(conn, "CREATE EXTENSION dblink")  # in the wheel, untrusted: as PostGIS elsewhere
        assert isinstance(untrusted, psycopg.errors.InsufficientPrivilege)
        message = str(untrusted.diag.message_primary)
        assert "\n" not in message
        assert 'permission denied to create extension "dblink": it needs a superuser' in message
        assert 'extensions = ["dblink"]' in message and "treefork sync" in message
        missing = _error_of(conn, "create extension if not exists\n  TimescaleDB cascade")
        message = str(missing.diag.message_primary)
        assert 'extension "timescaledb" is not available in PostgreSQL 18 (the embedded one)' in message
        assert "postgres =" in message and "--server-url" in message
        quoted = _error_of(conn, '/* CREATE EXTENSION hstore */ CREATE EXTENSION "Odd""Name"')
        assert 'extension "Odd"Name" is not available' in str(quoted.diag.message_primary)
        conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')  # trusted (treefork's compatibility ones)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        conn.execute("CREATE EXTENSION hstore -- CREATE EXTENSION dblink")  # a comment names nothing
        conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')  # already there: a notice, as before
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'dblink'").fetchone() == (0,)
        assert conn.execute("SELECT length(uuid_generate_v4()::text)").fetchone() == (36,)
        conn.execute("CREATE DATABASE test_app")  # a test runner's: a copy of template1, guard included
    with _role(_root_url(tf_repo).rsplit("/", 1)[0] + "/test_app") as conn:
        assert "needs a superuser" in str(_error_of(conn, "CREATE EXTENSION dblink"))
        conn.execute("CREATE EXTENSION citext")


def test_the_role_cannot_drop_alter_or_bypass_the_guard(tf_repo: Path) -> None:
    a = new(tf_repo, "a")  # a fork has the root's guard
    with _role(db_url(a)) as conn:
        for statement in (
            "DROP EVENT TRIGGER treefork_extension_guard",
            "ALTER EVENT TRIGGER treefork_extension_guard DISABLE",
            "ALTER EVENT TRIGGER treefork_extension_guard OWNER TO app",
            "DROP FUNCTION pg_catalog.treefork_extension_guard()",
            "CREATE OR REPLACE FUNCTION pg_catalog.treefork_extension_guard() RETURNS event_trigger "
            "LANGUAGE plpgsql AS 'BEGIN END'",
            "SET session_replication_role = replica",
            "SET event_triggers = off",
        ):
            assert isinstance(_error_of(conn, statement), psycopg.errors.InsufficientPrivilege), statement
        assert "needs a superuser" in str(_error_of(conn, "CREATE EXTENSION dblink"))
    run_tf(tf_repo, "rm", "a")


def test_the_guard_is_in_no_schema_of_the_app_and_the_admin_is_not_guarded(tf_repo: Path) -> None:
    rec = root_cluster(tf_repo)
    with admin_conn(rec, rec["dbname"]) as conn:
        where = conn.execute(
            "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = 'treefork_extension_guard'"
        ).fetchall()
        assert where == [("pg_catalog",)]
        conn.execute("CREATE EXTENSION dblink")  # the admin creates what it likes
        conn.execute("DROP EXTENSION dblink")


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
    assert "guard" not in first.text  # init made it everywhere
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


def test_doctor_fix_makes_them_and_the_guard_a_root_made_before_it_lacks(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    for rec in (cluster_of(tf_repo, "a"), root_cluster(tf_repo)):
        assert rec is not None
        for database in (rec["dbname"], "template1"):
            with admin_conn(rec, database) as conn:
                conn.execute("DROP EVENT TRIGGER treefork_extension_guard")  # as an older treefork made it
        if rec["workspace"] == "a":  # the root still has it: the guard is treefork's, no change of the app's
            assert run_tf(tf_repo, "diff", "a", check=False).rc == 0
    _commit_config(tf_repo, 'extensions = ["dblink"]\n')
    check = _extensions_check(tf_repo)
    assert "treefork's CREATE EXTENSION guard missing in workspace a (database app)" in check["message"], check
    fixed = run_tf(tf_repo, "doctor", "--fix", check=False)
    assert "[ fix] extensions: treefork sync" in fixed.text, fixed.text
    assert _extensions_check(tf_repo)["level"] == "ok"
    with _role(db_url(a)) as conn:
        assert "needs a superuser" in str(_error_of(conn, "CREATE EXTENSION pg_buffercache"))
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    run_tf(tf_repo, "rm", "a")


def test_an_extension_the_binaries_lack_is_a_one_line_error_and_nothing_is_made(tf_repo: Path) -> None:
    _commit_config(tf_repo, 'extensions = ["dblink", "postgis"]\n')
    r = run_tf(tf_repo, "sync", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "postgis", "treefork.toml")
    assert not _has(_root_url(tf_repo), "dblink")


def test_a_dev_database_that_is_a_treefork_cluster_imports_and_the_guard_stays_the_admins(
    tf_repo: Path, tmp_path: Path
) -> None:
    """pg_dump writes event triggers: the dump of another repository's root has the guard too."""
    other = make_repo(tmp_path / "other")
    (other / ".env").write_text(f"DATABASE_URL={_root_url(tf_repo)}\n")
    run_tf(other, "init")
    rec = root_cluster(other)
    with admin_conn(rec, rec["dbname"]) as conn:
        owners = conn.execute(
            "SELECT r.rolname FROM pg_event_trigger t JOIN pg_roles r ON r.oid = t.evtowner"
        ).fetchall()
    assert owners == [("postgres",)]
    with _role(db_url(other)) as conn:
        assert isinstance(
            _error_of(conn, "DROP EVENT TRIGGER treefork_extension_guard"), psycopg.errors.InsufficientPrivilege
        )
        assert "it needs a superuser" in str(_error_of(conn, "CREATE EXTENSION dblink"))
