"""PostGIS for a workspace's role that is no superuser, on the machine's own PostgreSQL 15 (Debian's
`postgresql-15-postgis-3`): PostgreSQL refuses it to the role, `treefork sync` makes it after `init`, and PostGIS
imported with the dev database reaches template1 (a test runner's database) without being listed. The tests
skip, saying so, where those packages are not installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.cli import new
from testing.older_server import OlderServer, bin_dir

PG15 = bin_dir(15)
POSTGIS_15 = Path("/usr/share/postgresql/15/extension/postgis.control")


@pytest.fixture(autouse=True)
def _need_postgis_15() -> None:
    if not (PG15 / "postgres").exists():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    if not POSTGIS_15.exists():
        pytest.skip("PostGIS for PostgreSQL 15 is not installed (apt-get install postgresql-15-postgis-3)")


def _commit_config(repo: Path, text: str) -> None:
    (repo / "treefork.toml").write_text(text)
    git(repo, "add", "treefork.toml")
    git(repo, "commit", "-q", "-m", "treefork.toml")


def _role(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    return conn


def _postgis_version(url: str) -> Any:
    with _role(url) as conn:
        return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()


def _uses_postgis(url: str) -> None:
    with _role(url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")  # an app's migration: there already
        assert conn.execute("SELECT ST_AsText(ST_MakePoint(1, 2))").fetchone() == ("POINT(1 2)",)


def test_postgis_asked_for_after_init_is_made_everywhere_by_sync(repo: Path) -> None:
    _commit_config(repo, 'postgres = "15"\n')
    run_tf(repo, "init", "--no-import")
    a = new(repo, "a")
    with _role(db_url(a)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as untrusted:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")  # the app's migration, before the fix
        assert 'permission denied to create extension "postgis"' in str(untrusted.value.diag.message_primary)
    _commit_config(repo, 'postgres = "15"\nextensions = ["postgis"]\n')
    first = run_tf(repo, "sync")
    assert "created extension postgis in the root (database app)" in first.text, first.text
    assert "created extension postgis in workspace a (database template1)" in first.text
    root = run_tf(repo, "url", "root").out.strip()
    for url in (root, db_url(a)):
        _uses_postgis(url)
        with _role(url) as conn:
            conn.execute("CREATE DATABASE test_maps")
        _uses_postgis(url.rsplit("/", 1)[0] + "/test_maps")
    versions = (_postgis_version(root), _postgis_version(db_url(a)))
    second = run_tf(repo, "sync")
    assert second.rc == 0 and "created" not in second.text, second.text
    assert (_postgis_version(root), _postgis_version(db_url(a))) == versions
    run_tf(repo, "rm", "a")


def test_postgis_imported_without_being_listed_reaches_template1(repo: Path, pg15: OlderServer) -> None:
    pg15.fresh_database("geo_dev")
    with pg15.admin("geo_dev") as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.execute("CREATE TABLE places (id int PRIMARY KEY, geom geometry(Point, 4326))")
    (repo / ".env").write_text(f"DATABASE_URL={pg15.url('geo_dev')}\n")
    run_tf(repo, "init")  # extensions lists nothing: the dev database's PostGIS picks PostgreSQL 15
    a = new(repo, "a")
    with _role(db_url(a)) as conn:
        conn.execute("CREATE DATABASE test_geo")  # a test runner's, as the role: a copy of template1
    test_url = db_url(a).rsplit("/", 1)[0] + "/test_geo"
    _uses_postgis(test_url)
    assert _postgis_version(test_url) == _postgis_version(db_url(repo))
    run_tf(repo, "rm", "a")
