"""Round 3's finding 4, what remains of it: while a workspace's cluster is stopped, a program bound to its port
asks the app for a cleartext password, and the app's driver sends it. Replayed with a real cluster, the app's
own URL from its env file, psycopg (libpq) and the red team's squatter (testing/fakepg.py): the password it
captures opens nothing but that workspace's own database as a role that is no superuser; with
`require_auth = true` in treefork.toml it captures nothing (docs/local-backend.md, "Trust boundary")."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dotenv import dotenv_values

from conftest import db_url, run_tf
from testing.cli import assert_one_line_error, new
from testing.fakepg import FakePg
from testing.server import cluster_of
from treefork import dbsettings


def record(repo: Path, name: str) -> dict[str, Any]:
    rec = cluster_of(repo, name)
    assert rec is not None
    return rec


def app_connects_to_the_squatter(url: str, port: int) -> FakePg:
    """`treefork server stop` was run: the app connects while a program holds its cluster's port."""
    with FakePg(port) as squatter, pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    assert squatter.connections >= 1, "the app reached the squatter"
    return squatter


def with_password(url: str, password: str) -> str:
    """url (another workspace's) with the stolen password instead of its own."""
    u = dbsettings.parse(url)
    assert u is not None
    return f"postgresql://{u.user}:{password}@127.0.0.1:{u.port}/{u.dbname}"


def refused(url: str, statement: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as e:
        conn.execute(statement)
    return str(e.value)


def test_finding_4_what_a_squatter_captures_from_the_app_opens_only_its_own_workspace(tf_repo: Path) -> None:
    wt = new(tf_repo, "victim")
    new(tf_repo, "sibling")
    app_url = db_url(wt)
    run_tf(tf_repo, "server", "stop")

    squatter = app_connects_to_the_squatter(app_url, record(tf_repo, "victim")["port"])

    stolen = squatter.captured[0].password  # the report's first step still works: no require_auth by default
    assert stolen == dbsettings.parse(app_url).password  # type: ignore[union-attr]
    urls = {name: run_tf(tf_repo, "url", name).out.strip() for name in ("victim", "sibling", "root")}  # started
    for name in ("sibling", "root"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(with_password(urls[name], stolen), connect_timeout=5)
    own = with_password(urls["victim"], stolen)
    with psycopg.connect(own) as conn:  # what it does open: the victim's own database, as its role
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    with psycopg.connect(own, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE o (l text)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY o FROM PROGRAM 'id'")  # the report's second step: refused
    assert "permission denied" in refused(own, "SELECT pg_read_file('postgresql.conf')")
    assert "permission denied" in refused(own, "SELECT pg_read_binary_file('global/1260')")
    assert "permission denied" in refused(own, "ALTER SYSTEM SET listen_addresses = '*'")


def test_finding_4_with_require_auth_the_squatter_captures_nothing(
    tf_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tf_repo / "treefork.toml").write_text("require_auth = true\n")
    with (tf_repo / ".env").open("a", newline="") as f:  # the app's other spellings of the same database
        f.write("PGHOST=localhost\r\nASYNC_URL=postgresql+asyncpg://me:pw@localhost:5432/app_dev?ssl=disable\r\n")
    wt = new(tf_repo, "guarded")
    env = dotenv_values(wt / ".env")
    app_url = env["DATABASE_URL"]
    assert app_url is not None and app_url.endswith("/app?require_auth=scram-sha-256")
    assert app_url.startswith("postgresql://app:") and "@localhost:" in app_url  # the app's spelling kept
    assert env["PGREQUIREAUTH"] == "scram-sha-256"
    assert env["ASYNC_URL"] is not None and env["ASYNC_URL"].endswith("?ssl=disable")  # asyncpg: not libpq's
    port = record(tf_repo, "guarded")["port"]
    with psycopg.connect(app_url) as conn:  # the running cluster: SCRAM, so the app connects as before
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    run_tf(tf_repo, "server", "stop")

    squatter = app_connects_to_the_squatter(app_url, port)
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGREQUIREAUTH"):
        monkeypatch.setenv(name, env[name] or "")
    with FakePg(port) as psql_like, pytest.raises(psycopg.OperationalError):  # the PG* family, as psql reads it
        psycopg.connect("", connect_timeout=5).close()

    assert squatter.captured == [] and psql_like.captured == []
    assert psql_like.connections >= 1


def test_require_auth_is_added_only_to_libpq_urls_on_this_machine() -> None:
    local = "postgresql://app:pw@127.0.0.1:17001/app"
    assert dbsettings.requiring_scram(local) == local + "?require_auth=scram-sha-256"
    assert dbsettings.requiring_scram(local + "?a=b#f") == local + "?a=b&require_auth=scram-sha-256#f"
    kept = local + "?require_auth=md5"  # the app's own choice stays
    assert dbsettings.requiring_scram(kept) == kept
    remote = "postgresql://app:pw@ep-x.neon.tech/app?sslmode=require"  # TLS-verified remote: not the squatter case
    assert dbsettings.requiring_scram(remote) == remote
    notes = dbsettings.Notes()
    scram = dbsettings.requiring_scram(local)
    for spelling in ("postgresql+asyncpg://me:pw@localhost/d", "jdbc:postgresql://localhost/d"):
        assert "require_auth" not in dbsettings.retarget(spelling, scram, var="X", notes=notes)
    for spelling in ("postgres://me:pw@localhost/d", "postgresql+psycopg://me:pw@localhost/d?application_name=a"):
        assert dbsettings.retarget(spelling, scram, var="X", notes=notes).endswith("require_auth=scram-sha-256")


def test_require_auth_that_is_not_a_boolean_is_one_line_with_the_fix(tf_server_repo: Path) -> None:
    (tf_server_repo / "treefork.toml").write_text('require_auth = "yes"\n')
    r = run_tf(tf_server_repo, "new", "x", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "require_auth must be a boolean (true or false)", "require_auth = false")
    assert not (tf_server_repo.parent / f"{tf_server_repo.name}.worktrees" / "x").exists()


def test_treefork_s_own_dumps_and_catalog_reads_never_send_the_admin_password_to_a_squatter(tf_repo: Path) -> None:
    """The URL the local backend gives pg_dump (diff) and the catalog signature (merge's collision check)
    requires SCRAM: even a squatter reached by some other path than a stopped cluster's port learns nothing."""
    from treefork.backends import catalog_signature, schema_diff
    from treefork.backends.local.clusters import ClusterBackend
    from treefork.context import Context
    from treefork.errors import FatalError

    new(tf_repo, "a")
    ctx = Context.open(tf_repo)
    backend = ctx.backend()
    assert isinstance(backend, ClusterBackend)
    db = next(b for b in backend.list_branches() if b.workspace == "a")
    url = backend.schema_url_or_none(db)
    assert url is not None and "require_auth=scram-sha-256" in url
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    elsewhere = url.replace(f":{db.extra['port']}/", f":{port}/")
    with FakePg(port) as fake:
        with pytest.raises(FatalError):
            schema_diff.dump(elsewhere)
        with pytest.raises(FatalError):
            catalog_signature.of_url(elsewhere)
    assert fake.connections >= 2, "both reached the squatter"
    assert fake.captured == []
