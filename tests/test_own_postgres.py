"""The local backend's clusters on the machine's own PostgreSQL (backends/local/binaries.py): Debian's
`postgresql-15` (and `postgresql-15-postgis-3`), chosen in treefork.toml or matched to the dev database at
`init --import`. The tests skip, saying so, where those packages are not installed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.cli import new
from testing.older_server import OlderServer, bin_dir

PG15 = bin_dir(15)
POSTGIS_15 = Path("/usr/share/postgresql/15/extension/postgis.control")


def _need_pg15(*, postgis: bool = False) -> None:
    if not (PG15 / "postgres").exists():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    if postgis and not POSTGIS_15.exists():
        pytest.skip("PostGIS for PostgreSQL 15 is not installed (apt-get install postgresql-15-postgis-3)")


def _commit_config(repo: Path, text: str) -> None:
    (repo / "treefork.toml").write_text(text)
    git(repo, "add", "treefork.toml")
    git(repo, "commit", "-q", "-m", "treefork.toml")


def _server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


def test_a_repo_on_postgresql_15_forks_online_and_doctor_reports_the_binaries(repo: Path) -> None:
    _need_pg15()
    _commit_config(repo, 'postgres = "15"\n')
    run_tf(repo, "init", "--no-import")
    main = run_tf(repo, "url", "root").out.strip()
    assert _server_major(main) == 15
    with psycopg.connect(main, autocommit=True) as holder:  # a dev server connected to main
        holder.execute("CREATE TABLE t (id int PRIMARY KEY)")
        holder.execute("INSERT INTO t VALUES (1), (2)")
        a = new(repo, "a")
        assert holder.execute("SELECT count(*) FROM t").fetchone() == (2,), "main's client stays connected"
        holder.execute("INSERT INTO t VALUES (3)")
    with psycopg.connect(db_url(a)) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("15")  # type: ignore[index]
        assert conn.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (2,)]
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    checks = json.loads(run_tf(repo, "doctor", "--json", check=False).out)["checks"]
    binaries = [c for c in checks if c["name"] == "postgres binaries"]
    assert len(binaries) == 1 and binaries[0]["level"] == "ok", binaries
    assert "PostgreSQL 15." in binaries[0]["message"] and str(PG15) in binaries[0]["message"]
    assert sorted(binaries[0]["data"]) == ["a", "root"]
    _moved_binaries(repo, "a", "/nonexistent/postgresql/15/bin")  # as if its package were removed
    checks = json.loads(run_tf(repo, "doctor", "--json", check=False).out)["checks"]
    gone = [c for c in checks if c["name"] == "postgres binaries" and c["level"] == "warn"]
    assert len(gone) == 1 and "is gone" in gone[0]["message"] and gone[0]["data"] == ["a"], checks
    run_tf(repo, "rm", "a")


def _moved_binaries(repo: Path, workspace: str, bin_dir: str) -> None:
    """Point the record of workspace's cluster at binaries that are not there."""
    home = Path(os.environ["TREEFORK_HOME"])
    common = str((repo / ".git").resolve())
    for record in (home / "clusters").glob("*/cluster.json"):
        data = json.loads(record.read_text())
        if data["workspace"] == workspace and data.get("repo_dir") and Path(data["repo_dir"]).resolve() == Path(common):
            record.write_text(json.dumps({**data, "pg_bin": bin_dir}))
            return
    raise AssertionError(f"no cluster record of {workspace}")


def _postgis_dev_database(server: OlderServer) -> str:
    server.fresh_database("maps_dev")
    with server.admin("maps_dev") as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.execute("CREATE TABLE places (id int PRIMARY KEY, name text, geom geometry(Point, 4326))")
        conn.execute("INSERT INTO places VALUES (1, 'harbour', ST_SetSRID(ST_MakePoint(4.5, 51.9), 4326))")
    return server.url("maps_dev")


def test_a_postgis_dev_database_on_15_is_imported_onto_15_and_a_workspace_uses_postgis(
    repo: Path, pg15: OlderServer
) -> None:
    _need_pg15(postgis=True)
    (repo / ".env").write_text(f"DATABASE_URL={_postgis_dev_database(pg15)}\n")
    _commit_config(repo, 'extensions = ["postgis"]\n')
    init = run_tf(repo, "init")  # nothing chosen: the dev database's major and extensions pick PostgreSQL 15
    assert str(PG15) in init.text
    assert _server_major(db_url(repo)) == 15
    a = new(repo, "a")
    with psycopg.connect(db_url(a), autocommit=True) as conn:  # the workspace's own credentials, no superuser
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        assert conn.execute("SELECT name, ST_AsText(geom) FROM places").fetchall() == [("harbour", "POINT(4.5 51.9)")]
        buffered = conn.execute(
            "SELECT ST_GeometryType(b), ST_NPoints(b), round(ST_Area(b)::numeric, 6)::text "
            "FROM ST_Buffer(ST_GeomFromText('POINT(0 0)'), 1, 1) AS b"
        ).fetchone()
        assert buffered == ("ST_Polygon", 5, "2.000000")  # a square: one segment a quarter circle
        conn.execute("INSERT INTO places VALUES (2, 'dock', ST_SetSRID(ST_MakePoint(-1.25, 2), 4326))")
        assert conn.execute("SELECT ST_AsText(geom) FROM places WHERE id = 2").fetchone() == ("POINT(-1.25 2)",)
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")  # an app's migration: there already
        conn.execute("CREATE DATABASE test_maps")  # a test runner's database: PostGIS is in its template
    test_url = db_url(a).rsplit("/", 1)[0] + "/test_maps"
    with psycopg.connect(test_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        assert conn.execute("SELECT ST_AsText(ST_MakePoint(1, 2))").fetchone() == ("POINT(1 2)",)
    with psycopg.connect(db_url(repo)) as conn:
        assert conn.execute("SELECT count(*) FROM places").fetchone() == (1,), "main has not the workspace's row"
    run_tf(repo, "rm", "a")
