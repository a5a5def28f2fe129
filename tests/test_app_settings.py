"""Real applications' database settings, as they are: every variable treefork points at a workspace keeps the
app's spelling (scheme, loopback host, every query parameter in order), split settings (PG*, POSTGRES_*,
Laravel's DB_*, DATABASE_*, treefork.toml's database_parts) are imported at `init` and repointed, and the rest
of the file stays byte for byte. Each rewritten value is checked by connecting with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from conftest import PgServer, git, run_tf
from testing.cli import assert_one_line_error, new
from testing.server import home
from treefork import dbsettings
from treefork.errors import FatalError

# ---- the spelling of one URL ----------------------------------------------------------------------------

WS = "postgresql://tf_r:p%40ss@127.0.0.1:17001/tf_r_ws"


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        ("postgres://me:pw@localhost:5432/app_dev", "postgres://tf_r:p%40ss@localhost:17001/tf_r_ws"),
        ("postgresql://me:pw@127.0.0.1:5432/app_dev", "postgresql://tf_r:p%40ss@127.0.0.1:17001/tf_r_ws"),
        ("postgresql+psycopg://me:pw@LocalHost/app_dev", "postgresql+psycopg://tf_r:p%40ss@LocalHost:17001/tf_r_ws"),
        (
            "postgresql+asyncpg://me:pw@localhost:5432/app_dev?ssl=require&prepared_statement_cache_size=0",
            "postgresql+asyncpg://tf_r:p%40ss@localhost:17001/tf_r_ws?ssl=disable&prepared_statement_cache_size=0",
        ),
        ("postgres+psycopg2://me@localhost/app_dev", "postgres+psycopg2://tf_r:p%40ss@localhost:17001/tf_r_ws"),
        (
            "postgresql://me:pw@localhost:5432/app_dev?schema=public&pgbouncer=true&connection_limit=1",
            "postgresql://tf_r:p%40ss@localhost:17001/tf_r_ws?schema=public&pgbouncer=true&connection_limit=1",
        ),
        (
            "postgresql://me:pw@[::1]:5432/app_dev?application_name=web&sslmode=verify-full&sslrootcert=system"
            "&channel_binding=require&connect_timeout=5#x",
            "postgresql://tf_r:p%40ss@127.0.0.1:17001/tf_r_ws?application_name=web&sslmode=disable"
            "&channel_binding=disable&connect_timeout=5#x",
        ),
        (
            "jdbc:postgresql://127.0.0.1:5432/app_dev?user=dev&password=devpw&ssl=true",
            "jdbc:postgresql://127.0.0.1:17001/tf_r_ws?user=tf_r&password=p%40ss&ssl=false",
        ),
        ("jdbc:postgresql://localhost/app_dev", "jdbc:postgresql://localhost:17001/tf_r_ws?user=tf_r&password=p%40ss"),
        (
            "postgresql:///app_dev?host=/var/run/postgresql",
            "postgresql://tf_r:p%40ss@127.0.0.1:17001/tf_r_ws?host=127.0.0.1",
        ),
        ("mysql://me:pw@localhost/app_dev", WS),
    ],
)
def test_a_url_keeps_its_spelling_and_changes_only_the_database(old: str, expected: str) -> None:
    assert dbsettings.retarget(old, WS, var="X", notes=dbsettings.Notes()) == expected


def test_tls_parameters_follow_the_database_and_are_said() -> None:
    notes = dbsettings.Notes()
    neon = "postgresql://neondb_owner:npg@ep-x.aws.neon.tech/neondb?sslmode=require&channel_binding=require"
    local = "postgresql://me@localhost/app_dev?sslmode=disable&application_name=web"
    assert dbsettings.retarget(local, neon, var="DATABASE_URL", notes=notes) == (
        "postgresql://neondb_owner:npg@ep-x.aws.neon.tech/neondb?sslmode=require&application_name=web"
        "&channel_binding=require"
    )
    asyncpg = dbsettings.retarget("postgresql+asyncpg://me@localhost/app_dev", neon, var="ASYNC_URL", notes=notes)
    assert asyncpg == "postgresql+asyncpg://neondb_owner:npg@ep-x.aws.neon.tech/neondb", "no libpq words for asyncpg"
    dbsettings.retarget("postgres://me@h/d?sslmode=require", WS, var="A", notes=notes)
    dbsettings.retarget("postgres://me@h/d?sslmode=require", WS, var="B", notes=notes)
    assert notes.line(".env") == (
        ".env: sslmode=disable -> sslmode=require (the database requires TLS) in DATABASE_URL; "
        "sslmode=require -> sslmode=disable in A, B (see docs/configuration.md, 'TLS parameters')"
    )


def test_database_parts_in_treefork_toml(tmp_path: Path) -> None:
    from treefork import config

    (tmp_path / "treefork.toml").write_text(
        "database_parts = ['MYAPP_DB_', { host = 'APP_SERVER', database = ['APP_SCHEMA', 'APP_DBNAME'] }]\n"
    )
    prefix, table = config.load(tmp_path).database_parts
    assert prefix.parts["host"] == ("MYAPP_DB_HOST", "MYAPP_DB_SERVER") and prefix.parts["dbname"][0] == "MYAPP_DB_NAME"
    assert dict(table.parts) == {"host": ("APP_SERVER",), "dbname": ("APP_SCHEMA", "APP_DBNAME")}
    for bad in ("database_parts = [{ hostname = 'X' }]", "database_parts = ['not a name']", "database_parts = [{}]"):
        (tmp_path / "treefork.toml").write_text(bad + "\n")
        with pytest.raises(FatalError, match="bad database_parts entry") as e:
            config.load(tmp_path)
        assert "database_parts = ['MYAPP_DB_']" in (e.value.hint or "")


# ---- whole env files, through `treefork new` ---------------------------------------------------------------

# Each case: the main worktree's env file, and the workspace's as it must be, byte for byte, where {user},
# {password} (percent-encoded: {password_q}), {port} and {db} are the workspace's; the variables to connect with.
CASES: dict[str, tuple[str, str, list[str | dict[str, str]]]] = {
    "django_postgres_scheme": (
        "# bakerydemo\nDJANGO_SETTINGS_MODULE=bakerydemo.settings.dev\n"
        "DATABASE_URL=postgres://bakery:s3cret@localhost:5432/app_dev\nSECRET_KEY='x#y'  # keep\n",
        "# bakerydemo\nDJANGO_SETTINGS_MODULE=bakerydemo.settings.dev\n"
        "DATABASE_URL=postgres://{user}:{password_q}@localhost:{port}/{db}\nSECRET_KEY='x#y'  # keep\n",
        ["DATABASE_URL"],
    ),
    "sqlalchemy_dialects": (
        'export DATABASE_URL="postgresql+psycopg://me:pw@127.0.0.1:5432/app_dev?application_name=api&connect_timeout=5"\r\n'
        "ASYNC_DATABASE_URL=postgresql+asyncpg://me:pw@localhost/app_dev\r\n"
        "LEGACY_URL='postgres+psycopg2://me:pw@localhost:5432/app_dev'\r\n",
        'export DATABASE_URL="postgresql+psycopg://{user}:{password_q}@127.0.0.1:{port}/{db}?application_name=api&connect_timeout=5"\r\n'
        "ASYNC_DATABASE_URL=postgresql+asyncpg://{user}:{password_q}@localhost:{port}/{db}\r\n"
        "LEGACY_URL='postgres+psycopg2://{user}:{password_q}@localhost:{port}/{db}'\r\n",
        ["DATABASE_URL", "ASYNC_DATABASE_URL", "LEGACY_URL"],
    ),
    "prisma": (
        'DATABASE_URL="postgresql://me:pw@localhost:5432/app_dev?schema=public&pgbouncer=true&connection_limit=1"\n'
        'DIRECT_URL="postgresql://me:pw@localhost:5432/app_dev?schema=public"\n',
        'DATABASE_URL="postgresql://{user}:{password_q}@localhost:{port}/{db}?schema=public&pgbouncer=true&connection_limit=1"\n'
        'DIRECT_URL="postgresql://{user}:{password_q}@localhost:{port}/{db}?schema=public"\n',
        ["DATABASE_URL", "DIRECT_URL"],
    ),
    "sslmode_require_on_loopback": (
        "DATABASE_URL=postgresql://me:pw@localhost:5432/app_dev?sslmode=require&application_name=web\n",
        "DATABASE_URL=postgresql://{user}:{password_q}@localhost:{port}/{db}?sslmode=disable&application_name=web\n",
        ["DATABASE_URL"],
    ),
    "fastapi_postgres_server": (
        "DOMAIN=localhost\nPOSTGRES_SERVER=db\nPOSTGRES_PORT=5432\nPOSTGRES_DB=app\n"
        "POSTGRES_USER=postgres\nPOSTGRES_PASSWORD=changethis\nSENTRY_DSN=\n",
        "DOMAIN=localhost\nPOSTGRES_SERVER=127.0.0.1\nPOSTGRES_PORT={port}\nPOSTGRES_DB={db}\n"
        "POSTGRES_USER={user}\nPOSTGRES_PASSWORD={password}\nSENTRY_DSN=\nDATABASE_URL={url}\n",
        [
            {
                "host": "POSTGRES_SERVER",
                "port": "POSTGRES_PORT",
                "user": "POSTGRES_USER",
                "password": "POSTGRES_PASSWORD",
                "dbname": "POSTGRES_DB",
            }
        ],
    ),
    "libpq": (
        "PGHOST=127.0.0.1\nPGPORT=5432\nPGUSER=me\nexport PGPASSWORD='pw'\nPGDATABASE=app_dev\n",
        "PGHOST=127.0.0.1\nPGPORT={port}\nPGUSER={user}\nexport PGPASSWORD='{password}'\nPGDATABASE={db}\nDATABASE_URL={url}\n",
        [{"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}],
    ),
    "laravel": (
        "APP_NAME=Laravel\nDB_CONNECTION=pgsql\nDB_HOST=127.0.0.1\nDB_PORT=5432\nDB_DATABASE=app_dev\n"
        "DB_USERNAME=me\nDB_PASSWORD=pw\n",
        "APP_NAME=Laravel\nDB_CONNECTION=pgsql\nDB_HOST=127.0.0.1\nDB_PORT={port}\nDB_DATABASE={db}\n"
        "DB_USERNAME={user}\nDB_PASSWORD={password}\nDATABASE_URL={url}\n",
        [
            {
                "host": "DB_HOST",
                "port": "DB_PORT",
                "user": "DB_USERNAME",
                "password": "DB_PASSWORD",
                "dbname": "DB_DATABASE",
            }
        ],
    ),
    "database_family_and_url": (
        "DATABASE_URL=postgres://me:pw@localhost:5432/app_dev\nDATABASE_HOST=localhost\nDATABASE_PORT=5432\n"
        "DATABASE_USER=me\nDATABASE_PASSWORD=pw\nDATABASE_NAME=app_dev\n",
        "DATABASE_URL=postgres://{user}:{password_q}@localhost:{port}/{db}\nDATABASE_HOST=localhost\n"
        "DATABASE_PORT={port}\nDATABASE_USER={user}\nDATABASE_PASSWORD={password}\nDATABASE_NAME={db}\n",
        [
            "DATABASE_URL",
            {
                "host": "DATABASE_HOST",
                "port": "DATABASE_PORT",
                "user": "DATABASE_USER",
                "password": "DATABASE_PASSWORD",
                "dbname": "DATABASE_NAME",
            },
        ],
    ),
    "aliases_round3_35": (
        "DATABASE_URL=postgresql://dev:devpw@127.0.0.1:5432/app_dev\nMY_DB=postgres://dev:devpw@localhost:5432/app_dev\n"
        "JDBC_URL=jdbc:postgresql://127.0.0.1:5432/app_dev?user=dev&password=devpw\nPGHOST=127.0.0.1\n",
        "DATABASE_URL=postgresql://{user}:{password_q}@127.0.0.1:{port}/{db}\n"
        "MY_DB=postgres://{user}:{password_q}@localhost:{port}/{db}\n"
        "JDBC_URL=jdbc:postgresql://127.0.0.1:{port}/{db}?user={user}&password={password_q}\nPGHOST=127.0.0.1\n"
        "PGPORT={port}\nPGUSER={user}\nPGPASSWORD={password}\nPGDATABASE={db}\n",
        [
            "DATABASE_URL",
            "MY_DB",
            "JDBC_URL",
            {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"},
        ],
    ),
    "treefork_toml_family": (
        "APP_SERVER=db.internal\nAPP_PORT=6543\nAPP_LOGIN=me\nAPP_SECRET=pw\nAPP_SCHEMA=app_dev\n",
        "APP_SERVER=127.0.0.1\nAPP_PORT={port}\nAPP_LOGIN={user}\nAPP_SECRET={password}\nAPP_SCHEMA={db}\nDATABASE_URL={url}\n",
        [
            {
                "host": "APP_SERVER",
                "port": "APP_PORT",
                "user": "APP_LOGIN",
                "password": "APP_SECRET",
                "dbname": "APP_SCHEMA",
            }
        ],
    ),
}
TOML_FAMILY = (
    "database_parts = [{ host = 'APP_SERVER', port = 'APP_PORT', user = 'APP_LOGIN', password = 'APP_SECRET', "
    "database = 'APP_SCHEMA' }]\n"
)


def _as_libpq(url: str) -> str:
    """What a driver of the app would make of its URL, for psycopg: the scheme's dialect and the words libpq
    does not know (Prisma's, asyncpg's, JDBC's) go."""
    url = re.sub(r"^(?:jdbc:)?postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url)
    base, _, query = url.partition("?")
    kept = [
        p
        for p in query.split("&")
        if p and p.split("=")[0] in ("application_name", "connect_timeout", "sslmode", "user", "password")
    ]
    return base + ("?" + "&".join(kept) if kept else "")


def _reads_the_mark(how: str | dict[str, str], env: dict[str, str | None]) -> str:
    if isinstance(how, str):
        conn = psycopg.connect(_as_libpq(env[how] or ""), connect_timeout=5)
    else:
        conn = psycopg.connect(**{k: env[v] for k, v in how.items()}, connect_timeout=5)
    with conn:
        return str(conn.execute("SELECT v FROM mark").fetchone()[0])


@pytest.mark.parametrize("case", list(CASES))
def test_the_workspace_env_file_is_the_apps_own_with_only_the_database_changed(tf_server_repo: Path, case: str) -> None:
    from dotenv import dotenv_values

    main, expected, connect_with = CASES[case]
    (tf_server_repo / ".env").write_bytes(main.encode())
    if case == "treefork_toml_family":
        (tf_server_repo / "treefork.toml").write_text(TOML_FAMILY)
    r = run_tf(tf_server_repo, "new", "ws", "--json")
    wt = Path(json.loads(r.out)["path"])
    url = run_tf(tf_server_repo, "url", "ws").out.strip()
    u = urlsplit(url)
    values = {"user": u.username, "password": unquote(u.password or ""), "password_q": u.password, "port": u.port}
    assert (wt / ".env").read_bytes() == expected.format(**values, db=u.path[1:], url=url).encode()
    assert (tf_server_repo / ".env").read_bytes() == main.encode(), "the main worktree's file is only read"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE mark (v text); INSERT INTO mark VALUES ('ws')")
    env = dotenv_values(wt / ".env")
    for how in connect_with:
        assert _reads_the_mark(how, env) == "ws", how
    tls_lines = [ln for ln in r.err.splitlines() if "TLS" in ln]
    if case == "sslmode_require_on_loopback":
        assert tls_lines == [
            f"warning: {wt / '.env'}: TLS parameters changed to suit its database: sslmode=require "
            "-> sslmode=disable in DATABASE_URL (see docs/configuration.md, 'TLS parameters')"
        ]
    else:
        assert tls_lines == []
    assert "TLS" not in run_tf(tf_server_repo, "new", "ws").err, "a re-run writes nothing and says nothing"


def test_laravel_db_settings_of_another_database_kind_are_left_alone(tf_server_repo: Path) -> None:
    main = "DB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3306\nDB_DATABASE=app\nDB_USERNAME=root\nDB_PASSWORD=pw\n"
    (tf_server_repo / ".env").write_text(main)
    wt = new(tf_server_repo, "mysql")
    url = run_tf(tf_server_repo, "url", "mysql").out.strip()
    assert (wt / ".env").read_text() == main + f"DATABASE_URL={url}\n"


# ---- init ------------------------------------------------------------------------------------------------


def _source_db(pg: PgServer, repo: Path, table_rows: int = 3) -> str:
    name = f"appsrc_{repo.parent.name[-8:].lower().replace('-', '_')}"
    with psycopg.connect(pg.fresh_database(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE bakery (id int PRIMARY KEY, bread text)")
        conn.execute("INSERT INTO bakery SELECT g, 'loaf ' || g FROM generate_series(1, %s) g", (table_rows,))
    return name


def test_init_imports_split_postgres_settings_and_points_main_and_workspaces_at_them(
    repo: Path, pg_server: PgServer
) -> None:
    """The FastAPI full-stack template's settings: no URL, POSTGRES_SERVER and friends."""
    source = _source_db(pg_server, repo)
    main = (
        "# FastAPI\r\nDOMAIN=localhost\r\nPOSTGRES_SERVER=localhost\r\nPOSTGRES_PORT={port}\r\n"
        'POSTGRES_DB={db}\r\nPOSTGRES_USER={user}\r\nPOSTGRES_PASSWORD="{password}"  # dev only\r\n'
    )
    parts = {"port": pg_server.port, "db": source, "user": "postgres", "password": pg_server.password}
    (repo / ".env").write_bytes(main.format(**parts).encode())
    r = run_tf(repo, "init")
    assert "with the data of postgresql://localhost:" in r.err and "(POSTGRES_* settings)" in r.err, r.err
    assert pg_server.password not in r.text
    root = urlsplit(run_tf(repo, "url", "root").out.strip())
    mine = {"port": root.port, "db": root.path[1:], "user": root.username, "password": unquote(root.password or "")}
    assert (repo / ".env").read_bytes() == (main.format(**mine) + f"DATABASE_URL={root.geturl()}\r\n").encode(), (
        "main keeps its spelling (localhost, quotes, comment, CRLF); only the database values changed"
    )
    previous = (repo / ".git" / "treefork" / "previous.env").read_text()
    assert (
        previous == f"POSTGRES_PORT={pg_server.port}\nPOSTGRES_USER=postgres\nPOSTGRES_PASSWORD={pg_server.password}\n"
    )
    assert mine["db"] == source, "the root's database has the source's name (an app that hard-codes it works)"

    def rows(env_file: Path) -> int:
        from dotenv import dotenv_values

        env = dotenv_values(env_file)
        keys = {
            "host": "POSTGRES_SERVER",
            "port": "POSTGRES_PORT",
            "dbname": "POSTGRES_DB",
            "user": "POSTGRES_USER",
            "password": "POSTGRES_PASSWORD",
        }
        with psycopg.connect(**{k: env[v] for k, v in keys.items()}, connect_timeout=5, autocommit=True) as conn:
            assert conn.info.port != pg_server.port
            return int(conn.execute("SELECT count(*) FROM bakery").fetchone()[0])

    assert rows(repo / ".env") == 3, "main reads the imported data from the root"
    wt = new(repo, "feature")
    assert rows(wt / ".env") == 3, "and a workspace from its own fork"
    from dotenv import dotenv_values

    env = dotenv_values(wt / ".env")
    with psycopg.connect(env["DATABASE_URL"] or "", autocommit=True) as conn:
        conn.execute("DELETE FROM bakery")
    assert rows(wt / ".env") == 0 and rows(repo / ".env") == 3, "the parts and the URL name the same database"
    with psycopg.connect(pg_server.url(source)) as conn:
        assert conn.execute("SELECT count(*) FROM bakery").fetchone() == (3,), "the source is only read"
    run_tf(repo, "rm", "feature")


def test_init_import_keeps_the_postgres_scheme_in_main(repo: Path, pg_server: PgServer) -> None:
    """bakerydemo (Django, dj-database-url): `postgres://` became `postgresql://` in main after init."""
    with pg_server.dropping_what_is_made():
        source = _source_db(pg_server, repo)
        old = f"postgres://postgres:{pg_server.password}@localhost:{pg_server.port}/{source}?connect_timeout=10"
        main = f"DJANGO_DEBUG=1\nDATABASE_URL={old}\nCACHE_URL=redis://localhost:6379/0\n"
        (repo / ".env").write_text(main)
        run_tf(repo, "init", "--server-url", pg_server.url(), "--import")
        root = urlsplit(run_tf(repo, "url", "root").out.strip())
        spelled = f"postgres://{root.username}:{root.password}@localhost:{root.port}{root.path}?connect_timeout=10"
        assert (repo / ".env").read_text() == main.replace(old, spelled)
        with psycopg.connect(spelled.replace("postgres://", "postgresql://", 1)) as conn:
            assert conn.execute("SELECT count(*) FROM bakery").fetchone() == (3,)


def _clusters() -> set[str]:
    return {p.name for p in (home() / "clusters").glob("*")} if (home() / "clusters").is_dir() else set()


def _nothing_made(repo: Path, env_before: bytes, clusters_before: set[str]) -> None:
    assert (repo / ".env").read_bytes() == env_before
    registry = repo / ".git" / "treefork" / "registry.json"
    assert not registry.exists() or json.loads(registry.read_text()).get("root_db_branch") is None
    assert _clusters() == clusters_before, "no cluster left behind"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ("APP_MODE=dev\nMYAPP_DB_SERVER=localhost\nMYAPP_DB_NAME=shop\n", "MYAPP_DB_SERVER, MYAPP_DB_NAME"),
        ("DB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_DATABASE=shop\n", "DB_CONNECTION=mysql"),
        ("DATABASE_URL=mysql://root:pw@localhost/shop\n", "not a PostgreSQL URL (mysql:...)"),
    ],
)
def test_init_says_which_settings_it_cannot_read_and_makes_nothing(repo: Path, env: str, says: str) -> None:
    (repo / ".env").write_text(env)
    clusters = _clusters()
    r = run_tf(repo, "init", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "cannot tell which database to import", says, "database_parts", "--no-import")
    assert "pw" not in r.text
    _nothing_made(repo, env.encode(), clusters)


def test_a_prefix_family_from_treefork_toml_gets_every_part(tf_server_repo: Path) -> None:
    (tf_server_repo / "treefork.toml").write_text("database_parts = ['MYAPP_DB_']\n")
    (tf_server_repo / ".env").write_text("MYAPP_DB_SERVER=localhost\nMYAPP_DB_PORT=5432\nMYAPP_DB_NAME=shop\n")
    wt = new(tf_server_repo, "shop")
    url = urlsplit(run_tf(tf_server_repo, "url", "shop").out.strip())
    assert (wt / ".env").read_text() == (
        f"MYAPP_DB_SERVER=localhost\nMYAPP_DB_PORT={url.port}\nMYAPP_DB_NAME={url.path[1:]}\n"
        f"MYAPP_DB_USER={url.username}\nMYAPP_DB_PASSWORD={unquote(url.password or '')}\nDATABASE_URL={url.geturl()}\n"
    )


# ---- an env file treefork must not write into: refused before anything is made (round 3, #13) -------------


@pytest.mark.parametrize("how", ["tracked", "negated"])
def test_init_refuses_an_unsafe_main_env_file_before_anything_is_made(repo: Path, how: str) -> None:
    if how == "tracked":
        git(repo, "add", "-f", ".env")
    else:
        (repo / ".gitignore").write_text(".env\n!.env\n")
        git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", how)
    before, clusters, status = (repo / ".env").read_bytes(), _clusters(), git(repo, "status", "--porcelain").stdout
    for args in (("init", "--no-import"), ("init", "--no-import", "--overwrite-env")):
        r = run_tf(repo, *args, check=False)
        assert r.rc == 1
        assert_one_line_error(r.err, "will not write a database password", "env_file", ".env.local")
        assert ("git rm --cached" in r.err) == (how == "tracked")
        _nothing_made(repo, before, clusters)
        assert git(repo, "status", "--porcelain").stdout == status
