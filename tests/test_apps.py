"""Real applications, as they are: Django (dj-database-url, django.contrib.postgres), SQLAlchemy + Alembic
(split POSTGRES_* settings, uuid-ossp) and knex + pg (DATABASE_URL with a query string), each installed from
its registry (tests/apps_support.py) and taken through treefork's whole life: a dev database with rows,
`init` importing it, `new a`, the app's own migration and own tests in the workspace, the data isolated from
main, `merge a` running the app's migrate command, and the app querying main after.

The apps' files are tests/apps/<stack>/base (the repository) and feature/ (what the workspace adds)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

import apps_support
from apps_support import App
from conftest import PgServer, db_url, git, run_tf
from testing.cli import new

pytestmark = pytest.mark.apps


def _sql(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def _dev_database(pg: PgServer, name: str) -> str:
    """An empty database on the session's server: the developer's dev database, before the app migrates it."""
    return pg.fresh_database(name)


def _root_url(repo: Path) -> str:
    return run_tf(repo, "url", "root").out.strip()


def _split_url(env_file: Path) -> str:
    """The URL the FastAPI template's settings build from POSTGRES_*, as libpq takes it."""
    from dotenv import dotenv_values

    v = dotenv_values(env_file)
    return (
        f"host={v['POSTGRES_SERVER']} port={v['POSTGRES_PORT']} dbname={v['POSTGRES_DB']} "
        f"user={v['POSTGRES_USER']} password={v['POSTGRES_PASSWORD']}"
    )


def assert_same_spelling(before: str, after: str, db_keys: tuple[str, ...]) -> None:
    """AFTER is BEFORE with the database values alone changed: every other line byte for byte, each database
    line with its key, quoting and (for a URL) its scheme and query string as written. treefork may append
    a DATABASE_URL line the file did not have; nothing else."""
    old, got = before.splitlines(keepends=True), after.splitlines(keepends=True)
    if "DATABASE_URL" not in db_keys and len(got) == len(old) + 1 and got[-1].startswith("DATABASE_URL="):
        got = got[:-1]
    assert len(got) == len(old), f"lines added or removed:\n{before}\n---\n{after}"
    for was, now in zip(old, got, strict=True):
        key = was.split("=", 1)[0]
        if key not in db_keys:
            assert now == was, f"{now!r} should still be {was!r}"
            continue
        assert now.startswith(f"{key}=") and now.endswith("\r\n") == was.endswith("\r\n"), now
        old_url, new_url = urlsplit(was.split("=", 1)[1].strip()), urlsplit(now.split("=", 1)[1].strip())
        assert (new_url.scheme, new_url.query) == (old_url.scheme, old_url.query), f"{now!r} was {was!r}"


# ---- Django -------------------------------------------------------------------------------------------

DJANGO_ENV = """\
# bakery: local settings (wagtail/bakerydemo's spelling)
DJANGO_SETTINGS_MODULE=bakery.settings
DJANGO_DEBUG=on
DJANGO_SECRET_KEY=changeme
DATABASE_URL=postgres://postgres:{password}@127.0.0.1:{port}/bakery_dev
"""
BREADS = [("Baguette", ["french", "crusty"]), ("Brioche", ["sweet"]), ("Rye", ["dark"])]


def _django_app(tmp_path: Path, pg: PgServer, bin_dir: Path | None) -> App:
    url = _dev_database(pg, "bakery_dev")
    env = DJANGO_ENV.format(password=pg.password, port=pg.port)
    app = apps_support.make_app(
        tmp_path, "django", env_text=env, migrate="python manage.py migrate", path_dirs=[bin_dir] if bin_dir else []
    )
    if bin_dir is None:  # the database as the app's migration 0001 leaves it, without running the app
        _sql(url, "CREATE EXTENSION citext; CREATE TABLE breads_bread (id bigserial PRIMARY KEY, name citext)")
        return app
    app.run(app.repo, "python", "manage.py", "migrate")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, tags in BREADS:
            conn.execute("INSERT INTO breads_bread (name, tags) VALUES (%s, %s)", (name, tags))
    return app


def test_django_through_init_new_migrate_test_merge(tmp_path: Path, pg_server: PgServer) -> None:
    bin_dir = apps_support.python_stack()
    with pg_server.dropping_what_is_made():
        app = _django_app(tmp_path, pg_server, bin_dir)
        run_tf(app.repo, "init")
        a = new(app.repo, "a")
        app.commit_overlay(a, "feature", "reviews, with an hstore")
        app.run(a, "python", "manage.py", "migrate")
        app.run(a, "python", "manage.py", "test", "--noinput")  # creates and drops test_bakery_dev: CREATEDB

        root, ws = _root_url(app.repo), db_url(a)
        for url in (root, ws):  # the dev database's rows, imported, then forked
            assert _sql(url, "SELECT name, tags FROM breads_bread ORDER BY id") == [(n, t) for n, t in BREADS]
        assert _sql(ws, "SELECT to_regclass('breads_review') IS NOT NULL") == [(True,)]
        assert _sql(root, "SELECT to_regclass('breads_review')") == [(None,)], "main's database has no reviews"
        applied = "SELECT name FROM django_migrations WHERE app = 'breads' ORDER BY name"
        assert _sql(root, applied) == [("0001_initial",)]

        run_tf(app.repo, "merge", "a", env={"PATH": app.env()["PATH"]})
        assert _sql(root, applied) == [("0001_initial",), ("0002_review",)]
        count = "from breads.models import Bread, Review; print(Bread.objects.count(), Review.objects.count())"
        assert app.run(app.repo, "python", "manage.py", "shell", "-c", count).splitlines()[-1] == "3 0"


def test_django_colliding_migrations_are_named_before_djangos_own_migrate_refuses(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Two agents each add a 0002 migration to the same Django app: treefork names both in `diff --all` and at the
    start of the second merge, whose migration then fails on the trial fork (Django: "Conflicting migrations
    detected"), leaving main's code and data as they were."""
    bin_dir = apps_support.python_stack()
    with pg_server.dropping_what_is_made():
        app = _django_app(tmp_path, pg_server, bin_dir)
        run_tf(app.repo, "init")
        a, b = new(app.repo, "a"), new(app.repo, "b")
        app.commit_overlay(a, "feature", "reviews")
        app.commit_overlay(b, "feature", "reviews, numbered by another agent")
        git(b, "mv", "breads/migrations/0002_review.py", "breads/migrations/0002_rating.py")
        git(b, "commit", "-q", "-m", "rename")
        r = run_tf(app.repo, "diff", "--all", "--json", check=False)
        assert r.rc == 4
        named = json.dumps([c for d in json.loads(r.out) for c in d["collisions"]])
        assert "0002_review.py" in named and "0002_rating.py" in named

        path = {"PATH": app.env()["PATH"]}
        run_tf(app.repo, "merge", "a", env=path)
        applied = "SELECT name FROM django_migrations WHERE app = 'breads' ORDER BY name"
        root = _root_url(app.repo)
        head = git(app.repo, "rev-parse", "HEAD").stdout
        r = run_tf(app.repo, "merge", "b", env=path, check=False)
        assert r.rc != 0
        assert "0002_rating.py" in r.err and "makemigrations --merge" in r.err
        assert r.err.index("makemigrations --merge") < r.err.index("Conflicting migrations")  # named first
        assert _sql(root, applied) == [("0001_initial",), ("0002_review",)]  # main's data as it was
        assert git(app.repo, "rev-parse", "HEAD").stdout == head  # and its code


def test_django_env_files_keep_the_postgres_scheme(tmp_path: Path, pg_server: PgServer) -> None:
    with pg_server.dropping_what_is_made():
        app = _django_app(tmp_path, pg_server, None)
        before = (app.repo / ".env").read_text()
        run_tf(app.repo, "init")
        a = new(app.repo, "a")
        assert_same_spelling(before, (app.repo / ".env").read_text(), ("DATABASE_URL",))
        assert_same_spelling(before, (a / ".env").read_text(), ("DATABASE_URL",))


def test_django_with_require_auth_migrates_and_tests_through_its_own_url(tmp_path: Path, pg_server: PgServer) -> None:
    """`require_auth = true` (docs/configuration.md): the workspace's DATABASE_URL gains
    `require_auth=scram-sha-256` and keeps the rest of its spelling; Django (dj-database-url, psycopg) passes it
    to libpq, and migrates and runs its tests through it."""
    bin_dir = apps_support.python_stack()
    with pg_server.dropping_what_is_made():
        app = _django_app(tmp_path, pg_server, bin_dir)
        toml = app.repo / "treefork.toml"
        toml.write_text(toml.read_text() + "require_auth = true\n")
        git(app.repo, "commit", "-q", "-am", "require SCRAM of the local databases")
        before = (app.repo / ".env").read_text()
        run_tf(app.repo, "init")
        a = new(app.repo, "a")
        url = db_url(a)
        assert url.startswith("postgres://") and url.endswith("require_auth=scram-sha-256"), url
        written = (a / ".env").read_text()  # quoted now: `?` would glob where a shell sources the file
        assert 'DATABASE_URL="postgres://app:' in written and '?require_auth=scram-sha-256"\n' in written, written
        unquoted = written.replace('="postgres://', "=postgres://").replace('?require_auth=scram-sha-256"', "")
        assert_same_spelling(before, unquoted, ("DATABASE_URL",))
        app.commit_overlay(a, "feature", "reviews, with an hstore")
        app.run(a, "python", "manage.py", "migrate")
        app.run(a, "python", "manage.py", "test", "--noinput")
        assert _sql(url, "SELECT to_regclass('breads_review') IS NOT NULL") == [(True,)]


def test_django_workspace_role_creates_test_databases_without_being_superuser(
    tmp_path: Path, pg_server: PgServer
) -> None:
    with pg_server.dropping_what_is_made():
        app = _django_app(tmp_path, pg_server, None)
        run_tf(app.repo, "init")
        a = new(app.repo, "a")
        query = "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        assert _sql(db_url(a), query) == [(False, True)]


# ---- SQLAlchemy + Alembic, the FastAPI full-stack template's settings ------------------------------------

FASTAPI_ENV = """\
# Domain
DOMAIN=localhost
ENVIRONMENT=local
PROJECT_NAME="Full Stack FastAPI Project"

# Backend
SECRET_KEY=changethis
FIRST_SUPERUSER=admin@example.com
FIRST_SUPERUSER_PASSWORD=changethis

# Postgres
POSTGRES_SERVER=localhost
POSTGRES_PORT={port}
POSTGRES_DB=app
POSTGRES_USER=postgres
POSTGRES_PASSWORD={password}
"""
POSTGRES_KEYS = ("POSTGRES_SERVER", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
ITEMS = ["first", "second", "third"]


def _alembic_app(tmp_path: Path, pg: PgServer, bin_dir: Path | None) -> App:
    url = _dev_database(pg, "app")
    env = FASTAPI_ENV.format(password=pg.password, port=pg.port)
    app = apps_support.make_app(
        tmp_path, "alembic", env_text=env, migrate="alembic upgrade head", path_dirs=[bin_dir] if bin_dir else []
    )
    if bin_dir is None:
        _sql(url, "CREATE TABLE item (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title varchar(255))")
    else:
        app.run(app.repo, "alembic", "upgrade", "head")
    with psycopg.connect(url, autocommit=True) as conn:
        for title in ITEMS:
            conn.execute("INSERT INTO item (title) VALUES (%s)", (title,))
    return app


def test_alembic_through_init_new_migrate_test_merge(tmp_path: Path, pg_server: PgServer) -> None:
    bin_dir = apps_support.python_stack()
    with pg_server.dropping_what_is_made():
        app = _alembic_app(tmp_path, pg_server, bin_dir)
        run_tf(app.repo, "init")
        a = new(app.repo, "a")
        app.commit_overlay(a, "feature", "tags, with uuid-ossp ids")
        app.run(a, "alembic", "upgrade", "head")
        app.run(a, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")

        root, ws = _split_url(app.repo / ".env"), _split_url(a / ".env")
        for url in (root, ws):
            assert _sql(url, "SELECT title FROM item ORDER BY id") == [(t,) for t in ITEMS]
        assert _sql(ws, "SELECT version_num FROM alembic_version") == [("0002",)]
        assert _sql(root, "SELECT version_num FROM alembic_version") == [("0001",)]
        assert _sql(root, "SELECT to_regclass('tag')") == [(None,)], "main's database has no tags"

        run_tf(app.repo, "merge", "a", env={"PATH": app.env()["PATH"]})
        assert _sql(root, "SELECT version_num FROM alembic_version") == [("0002",)]
        app.run(app.repo, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")


def test_alembic_two_heads_are_named_before_alembics_own_upgrade_refuses(tmp_path: Path, pg_server: PgServer) -> None:
    """Two agents each add a revision on top of 0001: treefork names the two heads in `diff --all` and at the
    start of the second merge, whose `alembic upgrade head` then fails on the trial fork ("Multiple head
    revisions"), leaving main's code and data as they were."""
    bin_dir = apps_support.python_stack()
    with pg_server.dropping_what_is_made():
        app = _alembic_app(tmp_path, pg_server, bin_dir)
        run_tf(app.repo, "init")
        a, b = new(app.repo, "a"), new(app.repo, "b")
        app.commit_overlay(a, "feature", "tags")
        app.commit_overlay(b, "feature", "tags, by another agent")
        versions = b / "migrations" / "versions"
        (versions / "0002_tag.py").rename(versions / "0002b_tag.py")
        text = (versions / "0002b_tag.py").read_text()
        (versions / "0002b_tag.py").write_text(text.replace('revision = "0002"', 'revision = "0002b"'))
        git(b, "add", "-A")
        git(b, "commit", "-q", "-m", "its own revision id")
        r = run_tf(app.repo, "diff", "--all", "--json", check=False)
        assert r.rc == 4
        named = json.dumps([c for d in json.loads(r.out) for c in d["collisions"]])
        assert "0002_tag.py" in named and "0002b_tag.py" in named

        path = {"PATH": app.env()["PATH"]}
        run_tf(app.repo, "merge", "a", env=path)
        root = _split_url(app.repo / ".env")
        head = git(app.repo, "rev-parse", "HEAD").stdout
        r = run_tf(app.repo, "merge", "b", env=path, check=False)
        assert r.rc != 0
        assert "0002b_tag.py" in r.err and "alembic merge heads" in r.err
        assert r.err.index("alembic merge heads") < r.err.index("failed")  # named before the migration ran
        assert "on a fork of root's database; root's database was never touched" in r.err
        assert _sql(root, "SELECT version_num FROM alembic_version") == [("0002",)]  # main's data as it was
        assert git(app.repo, "rev-parse", "HEAD").stdout == head  # and its code
        git(b, "merge", "-q", "--no-edit", "main")  # alembic's own view of the two branches together: two heads
        heads = app.run(b, "alembic", "heads")
        assert "0002 (head)" in heads and "0002b (head)" in heads, heads


def test_alembic_split_settings_are_imported_and_kept_as_written(tmp_path: Path, pg_server: PgServer) -> None:
    with pg_server.dropping_what_is_made():
        app = _alembic_app(tmp_path, pg_server, None)
        before = (app.repo / ".env").read_text()
        run_tf(app.repo, "init")
        a = new(app.repo, "a")
        for env_file in (app.repo / ".env", a / ".env"):
            assert_same_spelling(before, env_file.read_text(), POSTGRES_KEYS)
            assert _sql(_split_url(env_file), "SELECT title FROM item ORDER BY id") == [(t,) for t in ITEMS]
            assert f"POSTGRES_PORT={pg_server.port}\n" not in env_file.read_text(), "treefork's server, not the dev one"


def test_uuid_ossp_is_there_for_a_workspace_role(tf_repo: Path) -> None:
    a = new(tf_repo, "a")
    url = db_url(a)
    _sql(url, 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    assert _sql(url, "SELECT uuid_generate_v4() IS NOT NULL") == [(True,)]


# ---- knex + pg --------------------------------------------------------------------------------------

KNEX_ENV = """\
NODE_ENV=development
PORT=3000
DATABASE_URL=postgresql://postgres:{password}@127.0.0.1:{port}/shop_dev?application_name=shop&connect_timeout=5
"""
ORDERS = [("ada", 1200), ("grace", 800), ("linus", 450)]


def _knex_app(tmp_path: Path, pg: PgServer, node_modules: Path) -> App:
    url = _dev_database(pg, "shop_dev")
    env = KNEX_ENV.format(password=pg.password, port=pg.port)
    app = apps_support.make_app(
        tmp_path, "knex", env_text=env, migrate="npx knex migrate:latest", path_dirs=[node_modules / ".bin"]
    )
    (app.repo / "node_modules").symlink_to(node_modules)  # `npm install`, from the session's cache
    app.run(app.repo, "npx", "knex", "migrate:latest")
    with psycopg.connect(url, autocommit=True) as conn:
        for customer, cents in ORDERS:
            conn.execute("INSERT INTO orders (customer, cents) VALUES (%s, %s)", (customer, cents))
    return app


def _knex_workspace(app: App, node_modules: Path) -> Path:
    run_tf(app.repo, "init")
    a = new(app.repo, "a")
    (a / "node_modules").symlink_to(node_modules)
    return a


def test_knex_through_init_new_migrate_test_merge(tmp_path: Path, pg_server: PgServer) -> None:
    node_modules = apps_support.node_stack()
    with pg_server.dropping_what_is_made():
        app = _knex_app(tmp_path, pg_server, node_modules)
        a = _knex_workspace(app, node_modules)
        app.commit_overlay(a, "feature", "refunds")
        app.run(a, "npx", "knex", "migrate:latest")
        app.run(a, "npm", "test")

        root, ws = _root_url(app.repo), db_url(a)
        for url in (root, ws):
            assert _sql(url, "SELECT customer, cents FROM orders ORDER BY id") == ORDERS
        assert _sql(ws, "SELECT to_regclass('refunds') IS NOT NULL") == [(True,)]
        assert _sql(root, "SELECT to_regclass('refunds')") == [(None,)], "main's database has no refunds"
        assert _sql(root, "SELECT count(*) FROM knex_migrations") == [(1,)]

        run_tf(app.repo, "merge", "a", env={"PATH": app.env()["PATH"]})
        assert _sql(root, "SELECT count(*) FROM knex_migrations") == [(2,)]
        app.run(app.repo, "npm", "test")
        seen = json.loads(app.run(app.repo, "node", "whoami.js"))
        assert seen["database"] == "shop_dev"


def test_knex_env_files_keep_the_query_string(tmp_path: Path, pg_server: PgServer) -> None:
    node_modules = apps_support.node_stack()
    with pg_server.dropping_what_is_made():
        app = _knex_app(tmp_path, pg_server, node_modules)
        before = (app.repo / ".env").read_text()
        a = _knex_workspace(app, node_modules)
        for worktree in (app.repo, a):
            assert_same_spelling(before, (worktree / ".env").read_text(), ("DATABASE_URL",))
            assert json.loads(app.run(worktree, "node", "whoami.js"))["application_name"] == "shop"


def test_the_apps_cache_is_refused_when_it_is_not_this_users_alone(tmp_path: Path) -> None:
    shared = tmp_path / "cache"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(pytest.fail.Exception, match="not a directory of this user's alone"):
        apps_support.private_dir(shared)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(pytest.fail.Exception, match="not a symlink"):
        apps_support.private_dir(tmp_path / "link")
    made = apps_support.private_dir(tmp_path / "new")
    assert made.stat().st_mode & 0o777 == 0o700 and made.stat().st_uid == os.geteuid()
