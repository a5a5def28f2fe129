"""diff against each workspace's fork point, every kind of schema object, and collisions (schema and migration
files) named before any merge: real git, real PostgreSQL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, git, run_tf
from testing.cli import new


def _sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def _root_url(repo: Path) -> str:
    return run_tf(repo, "url", "root").out.strip()


def _commit(where: Path, files: dict[str, str], message: str = "work") -> None:
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    git(where, "add", ".")
    git(where, "commit", "-q", "-m", message)


@pytest.fixture
def users(tf_server_repo: Path) -> Path:
    _sql(_root_url(tf_server_repo), "CREATE TABLE users (id int PRIMARY KEY, email text)")
    return tf_server_repo


def test_after_a_merge_an_untouched_sibling_has_no_diff(users: Path) -> None:
    a, _ = new(users, "a"), new(users, "c")
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN phone text")
    _commit(a, {"feature.txt": "a\n"})
    run_tf(users, "merge", "a")
    _sql(_root_url(users), "ALTER TABLE users ADD COLUMN phone text")  # what a's migration does to the parent
    same = run_tf(users, "diff", "c", check=False)
    assert same.rc == 0 and same.out == "", same.text  # c did not "remove" a's column
    two_way = run_tf(users, "diff", "c", "--against-parent", check=False)
    assert two_way.rc == 4 and "-    phone text" in two_way.out  # the two-way view is still there
    everyone = run_tf(users, "diff", "--all", "--json", check=False)
    assert everyone.rc == 0 and [d["against"] for d in json.loads(everyone.out)] == ["fork point"]


@pytest.mark.parametrize(
    ("statement", "kind", "name"),
    [
        ("CREATE UNIQUE INDEX users_email_key ON users (email)", "index", "public.users_email_key"),
        ("ALTER TABLE users ADD CONSTRAINT email_lower CHECK (email = lower(email))", "constraint", "email_lower"),
        ("CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql AS $$ SELECT upper(t) $$", "function", "shout"),
    ],
)
def test_an_index_constraint_or_function_alone_shows(users: Path, statement: str, kind: str, name: str) -> None:
    a = new(users, "a")
    _sql(db_url(a), statement)
    r = run_tf(users, "diff", "a", check=False)
    assert r.rc == 4 and name.split(".")[-1] in r.out, r.text
    data = json.loads(run_tf(users, "diff", "a", "--json", check=False).out)
    assert [(c["kind"], c["change"]) for c in data["changes"]] == [(kind, "added")], data
    assert name in data["changes"][0]["name"]
    table = run_tf(users, "diff", "--all", check=False)
    assert table.rc == 4 and "(no tables)" not in table.out and kind in table.out, table.out


def test_columns_enums_views_and_two_workspaces_on_one_table(users: Path) -> None:
    a, b = new(users, "a"), new(users, "b")
    _sql(db_url(a), "ALTER TABLE users ADD COLUMN phone text", "CREATE TYPE mood AS ENUM ('ok', 'sad')")
    _sql(db_url(b), "ALTER TABLE users DROP COLUMN email", "CREATE VIEW v AS SELECT id FROM users")
    r = run_tf(users, "diff", "--all", "--json", check=False)
    assert r.rc == 4
    by_name = {d["name"]: d for d in json.loads(r.out)}
    kinds_a = {(c["kind"], c["name"], c["change"]) for c in by_name["a"]["changes"]}
    assert {("column", "public.users.phone", "added"), ("enum", "public.mood", "added")} <= kinds_a
    kinds_b = {(c["kind"], c["name"], c["change"]) for c in by_name["b"]["changes"]}
    assert {("column", "public.users.email", "removed"), ("view", "public.v", "added")} <= kinds_b
    [clash] = by_name["a"]["collisions"]
    assert (
        clash["kind"] == "schema" and clash["workspaces"] == ["a", "b"] and clash["objects"] == ["TABLE public.users"]
    )
    table = run_tf(users, "diff", "--all", check=False).out
    assert "workspaces a and b both changed public.users since they forked" in table
    ls = {row["name"]: row for row in json.loads(run_tf(users, "ls", "--json").out)}
    assert [c["kind"] for c in ls["a"]["collisions"]] == ["schema"]  # as diff --all found it


def test_without_a_recorded_fork_point_diff_falls_back_to_the_parent_and_says_so(users: Path) -> None:
    new(users, "a")
    _sql(_root_url(users), "ALTER TABLE users ADD COLUMN phone text")
    assert run_tf(users, "diff", "a", check=False).rc == 0  # the parent's change is not a's
    for fork_point in (users / ".git" / "treefork" / "forkpoints").glob("*.sql"):
        fork_point.unlink()  # as a workspace made before fork points were kept
    legacy = run_tf(users, "diff", "a", "--json", check=False)
    assert legacy.rc == 4 and "no recorded fork point" in legacy.err, legacy.text
    assert json.loads(legacy.out)["against"] == "parent"
    run_tf(users, "rm", "a")
    assert not list((users / ".git" / "treefork" / "forkpoints").glob("*.sql"))


def test_a_reset_records_a_new_fork_point(tf_repo: Path) -> None:
    _sql(_root_url(tf_repo), "CREATE TABLE users (id int)")
    a = new(tf_repo, "a")
    _sql(db_url(a), "CREATE INDEX users_id_idx ON users (id)")
    _sql(_root_url(tf_repo), "ALTER TABLE users ADD COLUMN phone text")
    since_fork = json.loads(run_tf(tf_repo, "diff", "a", "--json", check=False).out)
    assert [(c["kind"], c["change"]) for c in since_fork["changes"]] == [("index", "added")], since_fork
    run_tf(tf_repo, "reset", "a")
    again = run_tf(tf_repo, "diff", "a", check=False)
    assert again.rc == 0 and again.out == "" and "no recorded fork point" not in again.err, again.text
    assert run_tf(tf_repo, "diff", "a", "--against-parent", check=False).rc == 0


def test_escapes_in_object_names_are_neutralised(users: Path) -> None:
    a = new(users, "a")
    _sql(db_url(a), 'CREATE TABLE "evil\x1b]0;owned\x07\x1b[2J" (id int)')
    for args in (("diff", "a"), ("diff", "--all")):
        r = run_tf(users, *args, check=False)
        assert r.rc == 4 and "\x1b" not in r.out and "\x07" not in r.out, r.out
        assert "\\x1b]0;owned\\x07" in r.out
    assert "\x1b" in json.loads(run_tf(users, "diff", "a", "--json", check=False).out)["diff"]  # JSON is data


ALEMBIC = 'revision = "{rev}"\ndown_revision: str | None = "{down}"\n\ndef upgrade():\n    pass\n'


def test_colliding_migration_files_are_named_by_diff_all_and_ls(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    _commit(
        repo, {"app/migrations/0001_initial.py": "", "alembic/versions/base_.py": ALEMBIC.format(rev="base", down="")}
    )
    a, b, c = new(repo, "a"), new(repo, "b"), new(repo, "c")
    _commit(a, {"app/migrations/0002_email.py": "", "alembic/versions/r1_.py": ALEMBIC.format(rev="r1", down="base")})
    _commit(b, {"app/migrations/0002_phone.py": "", "alembic/versions/r2_.py": ALEMBIC.format(rev="r2", down="base")})
    _commit(c, {"app/migrations/0003_other.py": "", "db/sql/007_x.sql": ""})
    r = run_tf(repo, "diff", "--all", check=False)
    assert r.rc == 4
    assert (
        "migrations collide (django): a adds app/migrations/0002_email.py and b adds app/migrations/0002_phone.py; "
        "after merging one, run `python manage.py makemigrations --merge`" in r.out
    ), r.out
    assert "migrations collide (alembic): a adds alembic/versions/r1_.py and b adds alembic/versions/r2_.py" in r.out
    assert "alembic merge heads" in r.out and "c adds" not in r.out
    ls = {row["name"]: row for row in json.loads(run_tf(repo, "ls", "--json").out)}
    assert sorted(col["framework"] for col in ls["a"]["collisions"]) == ["alembic", "django"]
    assert ls["c"]["collisions"] == [] and ls["root"]["collisions"] is None
    # a folder the detection does not know, named in treefork.toml; and a sibling merged meanwhile still counts
    _commit(repo, {"treefork.toml": "migration_dirs = ['db/sql']\n", "db/sql/007_y.sql": ""}, "config")
    found = run_tf(repo, "diff", "--all", "--json", check=False)
    clashes = {frozenset(x["workspaces"]): x["files"] for d in json.loads(found.out) for x in d["collisions"]}
    assert clashes[frozenset({"c", "root"})] == {"c": "db/sql/007_x.sql", "root": "db/sql/007_y.sql"}, clashes


def test_merge_names_colliding_migrations_before_it_migrates(tf_repo: Path) -> None:
    repo = tf_repo
    migrate = "import sys; print('MIGRATING', file=sys.stderr)"
    _commit(repo, {"treefork.toml": f"migrate = [{json.dumps(sys.executable)}, '-c', {json.dumps(migrate)}]\n"})
    a, b = new(repo, "a"), new(repo, "b")
    _commit(a, {"app/migrations/0002_x.py": "# a\n"})
    _commit(b, {"app/migrations/0002_y.py": "# b\n"})
    r = run_tf(repo, "merge", "a")
    warning = "app/migrations/0002_x.py collides with b's app/migrations/0002_y.py (django)"
    assert warning in r.err and r.err.index(warning) < r.err.index("MIGRATING"), r.err
    assert (repo / "app/migrations/0002_x.py").exists()
