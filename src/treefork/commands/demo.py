"""`treefork demo`: a throwaway repository, N agents' workspaces created in parallel, proof that each
one's database is isolated, then a clean-up that leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg  # the demo's stand-in for an app: it reads and writes rows like one

from treefork import output, proc, selfcmd
from treefork.context import Context
from treefork.errors import FatalError
from treefork.workspace import envbuild


def run(*, count: int, keep: bool, as_json: bool) -> int:
    if not 1 <= count <= 16:
        raise FatalError(f"--workspaces {count} is out of range", hint="use 1 to 16")
    repo = Path(tempfile.mkdtemp(prefix="treefork-demo-")) / "app"
    repo.mkdir()
    try:
        report = _demo(repo, count)
    finally:
        if not keep:
            _cleanup(repo)  # removes the demo's clusters with its workspaces
    report["kept"] = str(repo) if keep else None
    report["servers_running"] = _servers_running(repo) if keep else 0
    if as_json:
        output.emit_json(report)
    else:
        _show(report)
    _say_what_is_left(report)  # on stderr, with the progress lines, --json or not
    return 0 if report["isolated"] else 1


def _servers_running(repo: Path) -> int:
    """How many of the kept demo repository's PostgreSQL clusters (its root and workspaces) still run."""
    r = proc.run(*selfcmd.argv("server", "status", "--json"), cwd=repo, check=False)
    if r.rc != 0:
        return 0
    rid = Context.open(repo).state().repo_id
    return sum(1 for c in json.loads(r.out)["clusters"] if c["repo_id"] == rid and c["running"])


def _say_what_is_left(report: dict[str, Any]) -> None:
    if report["kept"]:
        output.info(f"kept the demo repository in {report['kept']} (`cd {report['kept']} && treefork ls`)")
        output.info(
            f"its {report['servers_running']} PostgreSQL clusters are still running "
            "(`treefork rm` of its workspaces removes theirs; `treefork server stop` stops them all)"
        )
    else:
        output.info("removed the demo repository and its PostgreSQL clusters")


def _demo(repo: Path, count: int) -> dict[str, Any]:
    _tf_setup_repo(repo)
    _treefork(repo, "init")
    ctx = Context.open(repo)
    root_url = envbuild.load_env(repo / ".env")["DATABASE_URL"]
    with psycopg.connect(root_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, author text NOT NULL)")
        conn.execute("INSERT INTO notes (author) VALUES ('seed')")
    names = [f"agent-{i + 1}" for i in range(count)]
    output.info(f"creating {count} workspaces in parallel: {', '.join(names)}")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(lambda n: _treefork(repo, "new", n), names))
    spawn_seconds = time.perf_counter() - started
    state = ctx.state()
    rows = []
    for name in names:
        ws = state.workspaces[name]
        url = envbuild.load_env(Path(ws.path) / ".env")["DATABASE_URL"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO notes (author) VALUES (%s)", (name,))
    for name in names:
        ws = state.workspaces[name]
        url = envbuild.load_env(Path(ws.path) / ".env")["DATABASE_URL"]
        rows.append(
            {"workspace": name, "database": ws.db_branch, "clone_method": ws.clone_method, "sees": _authors(url)}
        )
    rows.append(
        {
            "workspace": "root (main)",
            "database": state.root_db_branch,
            "clone_method": state.root_clone_method,
            "sees": _authors(root_url),
        }
    )
    isolated = all(r["sees"] == ["seed", r["workspace"]] for r in rows[:-1]) and rows[-1]["sees"] == ["seed"]
    return {"repo": str(repo), "workspaces": rows, "isolated": isolated, "parallel_seconds": round(spawn_seconds, 2)}


def _authors(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT author FROM notes ORDER BY id")]


def _show(report: dict[str, Any]) -> None:
    output.table(
        ["workspace", "database", "method", "rows it sees"],
        ([r["workspace"], r["database"], r["clone_method"], ", ".join(r["sees"])] for r in report["workspaces"]),
        title=f"{len(report['workspaces']) - 1} workspaces created in parallel in {report['parallel_seconds']}s",
    )
    if report["isolated"]:
        output.info("isolated: each agent sees the seed row and only its own row; main sees only the seed")
    else:
        output.error("NOT isolated: a workspace saw another's rows")


def _tf_setup_repo(repo: Path) -> None:
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.email", "demo@treefork.invalid"),
        ("config", "user.name", "treefork demo"),
    ):
        proc.run("git", *args, cwd=repo)
    (repo / "README.md").write_text("# demo app\n")
    (repo / ".env.example").write_text(
        "# the app reads its database from here\nDATABASE_URL=postgresql://localhost/app_dev\nAPP_MODE=dev\n"
    )
    proc.run("git", "add", ".", cwd=repo)
    proc.run("git", "commit", "-q", "-m", "init", cwd=repo)


def _treefork(repo: Path, *args: str) -> str:
    return proc.run(*selfcmd.argv(*args), cwd=repo).out


def _cleanup(repo: Path) -> None:
    try:
        ctx = Context.open(repo)
        state = ctx.state()
        names = list(state.workspaces)
        if names:
            _treefork(repo, "rm", "--force", "--delete-branch", *names)
        if state.initialized and state.backend == "local":
            from treefork.backends.local.clusters import ClusterBackend

            backend = ctx.backend(state)
            if isinstance(backend, ClusterBackend):
                backend.drop_throwaway_repo()  # the demo made this root; a real root is never dropped
    except FatalError as e:
        output.warn(f"demo clean-up: {e}")
    shutil.rmtree(repo.parent, ignore_errors=True)
    shutil.rmtree(Path(str(repo) + ".worktrees"), ignore_errors=True)
