"""`treefork demo`: the story in a few seconds, in a throwaway repository. A dev server holds a connection to
main's database; N agents get workspaces forked from it in parallel; each adds and runs its own migration in
its own worktree, against its own `.env`; nobody sees anyone else's; `diff` shows one agent's schema change;
`merge` brings its code into main and runs its migration on main's database (the dev server stays connected);
everything is cleaned up; and one line says what to run in your own repository."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg  # the demo's stand-in for the dev server: it holds a connection like one

from treefork import output, proc, selfcmd
from treefork.context import Context
from treefork.errors import FatalError
from treefork.workspace import envbuild

NEXT = "next, in your own repository: cd your-app && treefork init && treefork install && treefork new my-feature"

# The demo app's migration runner: what `manage.py migrate` or `alembic upgrade head` is to a real app. It
# applies the migrations/*.sql not yet applied, reading DATABASE_URL from its environment or its own `.env`.
MIGRATE_PY = '''"""Apply migrations/*.sql in order, once each, to the database of DATABASE_URL (environment, else ./.env)."""
import os, pathlib, psycopg


def migrate(url, folder):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY)")
        done = {name for (name,) in conn.execute("SELECT name FROM schema_migrations")}
        for sql in sorted(pathlib.Path(folder).glob("*.sql")):
            if sql.stem not in done:
                with conn.transaction():
                    conn.execute(sql.read_text())
                    conn.execute("INSERT INTO schema_migrations VALUES (%s)", (sql.stem,))
                print(f"applied {sql.stem}")


if __name__ == "__main__":
    migrate(
        os.environ.get("DATABASE_URL") or next(
            line.split("=", 1)[1].strip().strip("'\\"")
            for line in pathlib.Path(".env").read_text().splitlines()
            if line.startswith("DATABASE_URL=")
        ),
        "migrations",
    )
'''
FIRST_MIGRATION = (
    "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);\nINSERT INTO notes (body) VALUES ('seed');\n"
)
AGENT_MIGRATIONS = (
    "ALTER TABLE notes ADD COLUMN tags text[] NOT NULL DEFAULT '{{}}';",
    "CREATE TABLE likes (note_id int REFERENCES notes, who text NOT NULL);",
    "CREATE TABLE {name_sql} (id serial PRIMARY KEY);",
)


def run(*, count: int, keep: bool, as_json: bool) -> int:
    if not 1 <= count <= 16:
        raise FatalError(f"--workspaces {count} is out of range", hint="use 1 to 16")
    started = time.perf_counter()
    repo = Path(tempfile.mkdtemp(prefix="treefork-demo-")) / "app"
    repo.mkdir()
    try:
        report = _demo(repo, count)
    finally:
        if not keep:
            _cleanup(repo)  # removes the demo's clusters with its workspaces
    report["kept"] = str(repo) if keep else None
    report["servers_running"] = _servers_running(repo) if keep else 0
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["next"] = NEXT
    if as_json:
        output.emit_json(report)
    else:
        _show(report)
    _say_what_is_left(report)  # on stderr, with the progress lines, --json or not
    return 0 if report["isolated"] and report["merged"] and report["dev_server_kept"] else 1


def _demo(repo: Path, count: int) -> dict[str, Any]:
    _app_repo(repo)
    _treefork(repo, "init")
    root_url = envbuild.load_env(repo / ".env")["DATABASE_URL"]
    _migrate_in_process(root_url, repo / "migrations")  # main's dev database, as the app's runner makes it
    with psycopg.connect(root_url, autocommit=True, application_name="dev-server") as dev_server:
        pid = dev_server.info.backend_pid
        names = [f"agent-{i + 1}" for i in range(count)]
        output.info(
            f"the dev server holds a connection to main's database; {', '.join(names)} fork it in parallel, "
            "then each runs a migration of its own in its own worktree"
        )
        with ThreadPoolExecutor(max_workers=count) as pool:
            done = list(pool.map(lambda n: _agent(repo, n, names.index(n)), names))
        paths, parallel = {n: p for n, p, _ in done}, max(s for _, _, s in done)
        rows = [_row(paths[n], n, Context.open(repo)) for n in names]
        main_before = _migrations(root_url)
        isolated = all(r["migrations"] == ["0001_notes", _migration_name(r["workspace"])] for r in rows)
        isolated = isolated and main_before == ["0001_notes"]
        diff = _treefork(repo, "diff", names[0], check=False)
        output.info(f"merge {names[0]}: its code into main, its migration run on main's database")
        _treefork(repo, "merge", names[0])
        main_after = _migrations(root_url)
        still = dev_server.execute("SELECT pg_backend_pid()").fetchone()
        kept = still is not None and still[0] == pid and bool(_columns(dev_server, "notes") & {"tags"})
    rows.append({"workspace": "root (main)", "database": None, "clone_method": None, "migrations": main_before})
    return {
        "repo": str(repo),
        "workspaces": rows,
        "isolated": isolated,
        "parallel_seconds": round(parallel, 2),
        "diff": diff,
        "merged": names[0] if main_after == ["0001_notes", _migration_name(names[0])] else None,
        "main_after_merge": main_after,
        "dev_server_kept": kept,
    }


def _agent(repo: Path, name: str, index: int) -> tuple[str, Path, float]:
    """One agent: its workspace, then its migration. Returns its worktree and how long the fork took."""
    started = time.perf_counter()
    path = Path(_treefork(repo, "new", name).strip())
    seconds = time.perf_counter() - started
    _agent_migrates(path, name, index)
    return name, path, seconds


def _migrate_in_process(url: str, folder: Path) -> None:
    runner: dict[str, Any] = {"__name__": "migrate"}
    exec(compile(MIGRATE_PY, "migrate.py", "exec"), runner)  # the demo app's own runner, this once in-process
    with contextlib.redirect_stdout(io.StringIO()):
        runner["migrate"](url, folder)


def _agent_migrates(worktree: Path, name: str, index: int) -> None:
    """What an agent does in its worktree: a migration of its own, run by the app's runner against the
    worktree's own `.env`, then committed."""
    sql = AGENT_MIGRATIONS[index % len(AGENT_MIGRATIONS)].format(name_sql=name.replace("-", "_"))
    (worktree / "migrations" / f"{_migration_name(name)}.sql").write_text(sql + "\n")
    proc.run(sys.executable, "migrate.py", cwd=worktree, env=_without_database_url())
    proc.run("git", "add", "migrations", cwd=worktree)
    proc.run("git", "commit", "-q", "-m", f"{name}: {sql}", cwd=worktree)


def _migration_name(workspace: str) -> str:
    return f"0002_{workspace.replace('-', '_')}"


def _row(worktree: Path, name: str, ctx: Context) -> dict[str, Any]:
    ws = ctx.state().workspaces[name]
    url = envbuild.load_env(worktree / ".env")["DATABASE_URL"]
    return {
        "workspace": name,
        "database": ws.db_branch,
        "clone_method": ws.clone_method,
        "migrations": _migrations(url),
    }


def _migrations(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def _columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
    return {r[0] for r in rows}


def _show(report: dict[str, Any]) -> None:
    output.table(
        ["workspace", "database", "method", "migrations it has"],
        (
            [r["workspace"], r["database"] or "", r["clone_method"] or "", ", ".join(r["migrations"])]
            for r in report["workspaces"]
        ),
        title=f"{len(report['workspaces']) - 1} workspaces forked in parallel (the slowest in {report['parallel_seconds']}s)",
    )
    if report["isolated"]:
        output.info("isolated: each agent's database has its own migration only; main's has none of theirs")
    else:
        output.error("NOT isolated: a database had another's migration")
    if report["diff"].strip():
        output.info(f"treefork diff {report['workspaces'][0]['workspace']}:")
        for line in report["diff"].strip().splitlines():
            output.info(f"  {line}")
    if report["merged"]:
        output.info(f"merged {report['merged']}: main now has {', '.join(report['main_after_merge'])}")
    output.info(
        "the dev server's connection stayed up through every fork and the merge"
        if report["dev_server_kept"]
        else "the dev server lost its connection"
    )
    output.info(f"done in {report['seconds']}s")


def _say_what_is_left(report: dict[str, Any]) -> None:
    if report["kept"]:
        output.info(f"kept the demo repository in {report['kept']} (`cd {report['kept']} && treefork ls`)")
        output.info(
            f"its {report['servers_running']} PostgreSQL clusters are still running "
            "(`treefork rm` of its workspaces removes theirs; `treefork server stop` stops them all)"
        )
    else:
        output.info("removed the demo repository and its PostgreSQL clusters")
    output.info(report["next"])


def _servers_running(repo: Path) -> int:
    """How many of the kept demo repository's PostgreSQL clusters (its root and workspaces) still run."""
    r = proc.run(*selfcmd.argv("server", "status", "--json"), cwd=repo, check=False)
    if r.rc != 0:
        return 0
    rid = Context.open(repo).state().repo_id
    return sum(1 for c in json.loads(r.out)["clusters"] if c["repo_id"] == rid and c["running"])


def _app_repo(repo: Path) -> None:
    """A small app: a migration runner, its first migration, an example env file, `migrate` for merge."""
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.email", "demo@treefork.invalid"),
        ("config", "user.name", "treefork demo"),
    ):
        proc.run("git", *args, cwd=repo)
    (repo / "README.md").write_text("# demo app\n")
    (repo / ".gitignore").write_text(".env\n")
    (repo / ".env.example").write_text(
        "# the app reads its database from here\nDATABASE_URL=postgresql://localhost/app_dev\nAPP_MODE=dev\n"
    )
    (repo / "migrate.py").write_text(MIGRATE_PY)
    (repo / "migrations").mkdir()
    (repo / "migrations" / "0001_notes.sql").write_text(FIRST_MIGRATION)
    (repo / "treefork.toml").write_text(f'migrate = [{json.dumps(sys.executable)}, "migrate.py"]\n')
    proc.run("git", "add", ".", cwd=repo)
    proc.run("git", "commit", "-q", "-m", "init", cwd=repo)


def _without_database_url() -> dict[str, str]:
    """This process's environment without a DATABASE_URL of the user's shell: the app reads its own `.env`."""
    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}


def _treefork(repo: Path, *args: str, check: bool = True) -> str:
    return proc.run(*selfcmd.argv(*args), cwd=repo, check=check).out


def _cleanup(repo: Path) -> None:
    try:
        ctx = Context.open(repo)
        state = ctx.state()
        names = list(state.workspaces)
        if names:
            _treefork(repo, "rm", "--force", "--delete-branch", *names)
        if state.initialized:
            from treefork.backends.local.clusters import ClusterBackend

            backend = ctx.backend(state)
            if isinstance(backend, ClusterBackend):
                backend.drop_throwaway_repo()  # the demo made this root; a real root is never dropped
    except FatalError as e:
        output.warn(f"demo clean-up: {e}")
    shutil.rmtree(repo.parent, ignore_errors=True)
    shutil.rmtree(Path(str(repo) + ".worktrees"), ignore_errors=True)
