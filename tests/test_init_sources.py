"""`init` in a project that already has a dev database (its data goes into the root, main is pointed at the
root), `init --import`, and `init --server-url` (branching on a PostgreSQL server the user already runs)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from conftest import ENV_SAMPLE, PgServer, db_url, run_tf
from testing import in_process
from testing.cli import assert_one_line_error, new
from testing.repo import registry
from testing.server import cluster_dirs


def _source_db(pg: PgServer, repo: Path) -> str:
    name = f"devsrc_{repo.parent.name[-8:].lower().replace('-', '_')}"
    with psycopg.connect(pg.fresh_database(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 2) g")
        conn.execute("CREATE EXTENSION vector")  # untrusted: only a superuser creates it
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
    return name


def _set_main_url(repo: Path, url: str) -> None:
    (repo / ".env").write_text(f"APP_MODE=dev\nDATABASE_URL={url}\n")


def test_plain_init_brings_the_existing_dev_database_into_the_root(repo: Path, pg_server: PgServer) -> None:
    source = _source_db(pg_server, repo)
    _set_main_url(repo, pg_server.url(source))
    r = run_tf(repo, "init")
    lines = [ln for ln in r.err.splitlines() if not ln.startswith("importing")]
    assert len(lines) == 2 and "with the data of" in lines[0] and "now points at the root" in lines[1], r.err
    assert pg_server.password not in r.text
    root_url = db_url(repo)
    assert ":5432" not in root_url and root_url != pg_server.url(source)
    assert (repo / ".git" / "treefork" / "previous.env").read_text() == f"DATABASE_URL={pg_server.url(source)}\n"
    assert (repo / ".git" / "treefork" / "previous.env").stat().st_mode & 0o777 == 0o600
    assert (repo / ".env").read_text().startswith("APP_MODE=dev\n")
    wt = new(repo, "feature")
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,)
        assert conn.execute("SELECT current_database()").fetchone() == (source,), "the same database name"
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'").fetchone()[0]
        assert owner == "app", "imported objects belong to the workspace role, not the source's owner"
        conn.execute("INSERT INTO items VALUES (1, '[1,2,3]')")  # usable by the role, which is no superuser
        conn.execute("UPDATE customers SET name = 'renamed'")
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    with psycopg.connect(root_url) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    with psycopg.connect(pg_server.url(source)) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,), "the source is only read"
    listed = {r["name"]: r for r in json.loads(run_tf(repo, "ls", "--json").out)}
    assert listed["root"]["clone_method"] == "import"


def test_init_never_puts_a_password_on_a_command_line(
    repo: Path, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process init starts is recorded with the command line `ps` would show it under (so init runs in
    this process, whatever TREEFORK_TEST_SUBPROCESS says)."""
    started: list[str] = []
    real_popen_init = subprocess.Popen.__init__

    def recording(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        started.append(" ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args))
        real_popen_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording)
    _set_main_url(repo, pg_server.url(_source_db(pg_server, repo)))
    ran = in_process.run(repo, ("init",), env={}, input=None)
    monkeypatch.undo()
    assert ran.rc == 0, ran.err
    assert any("/pg_dump " in c for c in started) and any("/pg_restore " in c for c in started), started
    root = json.loads(
        (
            Path(os.environ["TREEFORK_HOME"]) / "clusters" / f"{registry(repo)['repo_id']}-root" / "cluster.json"
        ).read_text()
    )
    for cmdline in started:
        assert pg_server.password not in cmdline and root["role_password"] not in cmdline, cmdline


def test_an_unreachable_dev_database_stops_init_with_the_fix_and_leaves_nothing(repo: Path) -> None:
    _set_main_url(repo, "postgresql://me:hunter2@127.0.0.1:1/app_dev")
    r = run_tf(repo, "init", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "import from postgresql://127.0.0.1:1/app_dev failed", "--no-import")
    assert "hunter2" not in r.text
    assert not (repo / ".git" / "treefork" / "registry.json").exists() or registry(repo)["root_db_branch"] is None
    assert not list((Path(os.environ["TREEFORK_HOME"]) / "clusters").glob("*-root")) or all(
        json.loads((p / "cluster.json").read_text())["status"] == "ready"
        for p in (Path(os.environ["TREEFORK_HOME"]) / "clusters").glob("*-root")
        if (p / "cluster.json").exists()
    )
    r = run_tf(repo, "init", "--no-import")
    assert "hunter2" in (repo / ".env").read_text(), "--no-import leaves the main worktree's URL alone"
    assert cluster_dirs(repo)


def test_init_import_on_an_initialised_repo_is_refused(tf_repo: Path, pg_server: PgServer) -> None:
    r = run_tf(tf_repo, "init", "--import", pg_server.url(), check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "already initialised")
    assert run_tf(tf_repo, "init", "--no-import").rc == 0  # a plain re-run stays idempotent


def test_server_url_branches_on_an_existing_server(repo: Path, pg_server: PgServer) -> None:
    run_tf(repo, "init", "--server-url", pg_server.url())
    a = new(repo, "a")
    b = new(repo, "b")
    with psycopg.connect(db_url(a), autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_a (x int)")
    with psycopg.connect(db_url(b)) as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)
    secrets = repo / ".git" / "treefork" / "secrets.json"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert pg_server.password not in (a / ".env").read_text(), "the admin password never reaches a worktree"
    assert pg_server.password not in (repo / ".git" / "treefork" / "registry.json").read_text()
    run_tf(repo, "rm", "a", "b")
    assert not (a.exists() or b.exists())


def test_server_url_never_sends_the_roles_password_to_the_server(repo: Path, pg_server: PgServer) -> None:
    """The repo's role gets a SCRAM verifier computed here, so its password is in no statement the server logs."""
    with pg_server.dropping_what_is_made():  # the session's server, shared by the tests after this one
        with pg_server.admin() as conn:
            conn.execute("ALTER ROLE postgres SET log_statement = 'all'")
        try:
            run_tf(repo, "init", "--server-url", pg_server.url())
            password = urlsplit(run_tf(repo, "url", "root").out.strip()).password
        finally:
            with pg_server.admin() as conn:
                conn.execute("ALTER ROLE postgres RESET log_statement")
    log = pg_server.log.read_text()
    assert password and "CREATE ROLE" in log and password not in log


def test_server_url_copies_a_busy_parent_logically_without_disconnecting_anyone(
    repo: Path, pg_server: PgServer
) -> None:
    run_tf(repo, "init", "--server-url", pg_server.url())
    a = new(repo, "a")
    with psycopg.connect(db_url(a), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
    holder = psycopg.connect(db_url(a), autocommit=True, application_name="dev-server")
    try:
        pid = holder.info.backend_pid
        r = run_tf(repo, "new", "b", "--from", "a", "--json")
        assert "logical" in r.err
        assert json.loads(r.out)["clone_method"] == "logical"
        assert holder.execute("SELECT pg_backend_pid()").fetchone() == (pid,), "the parent's client is untouched"
    finally:
        holder.close()
    b = Path(json.loads(r.out)["path"])
    with psycopg.connect(db_url(b)) as conn:
        assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    rows = {x["name"]: x for x in json.loads(run_tf(repo, "ls", "--json").out)}
    assert rows["b"]["clone_method"] == "logical"
    run_tf(repo, "rm", "b", "a")


def test_server_url_of_a_server_that_is_down_stops_init_with_the_fix(repo: Path) -> None:
    r = run_tf(repo, "init", "--server-url", "postgresql://postgres:hunter2@127.0.0.1:1/postgres", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "127.0.0.1", "check the server is up and the admin URL")
    assert "hunter2" not in r.text
    assert (repo / ".env").read_bytes() == ENV_SAMPLE.encode(), "the main env file is untouched"
