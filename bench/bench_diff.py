"""`treefork diff --all`, `treefork ls --json` and `merge`'s time to its migrate command, with 20 workspaces
beside them, each as a multiple of `treefork url` (the cheapest command that opens the registry and the backend)
in the same run.

`merge → migrate` is the time from starting `treefork merge` of the last workspace to its migrate command starting (on the trial
fork of the parent's database): the migrate command records the moment and fails, so the merge undoes itself
and the next round starts from the same state.

The repository has a root with 12 tables (each with an index); each workspace forks from it, adds a column and
commits a Django-style migration; two pairs collide (one on a table, one on a migration number). The three
commands then run in turn, alternating, as fresh CLI processes (as agents run them). Medians; the ratio is the
command's median over url's. Writes docs/benchmarks-diff.md and its section of docs/benchmarks.md.

    python bench/bench_diff.py                 # 20 workspaces, 7 rounds
    python bench/bench_diff.py --workspaces 5 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    bench_env,
    load_average,
    log,
    machine_description,
    paste_section,
    remove_tree,
    run,
    tf_cmd,
)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
OWN = ROOT / "docs" / "benchmarks-diff.md"
BEGIN, END = "<!-- BEGIN DIFF TABLES (pasted from docs/benchmarks-diff.md) -->", "<!-- END DIFF TABLES -->"
GOALS = {"ls --json": 2.0, "diff --all": 8.0, "merge → migrate": 4.0}
COMMANDS = {
    "url": ("url", "w00"),
    "ls --json": ("ls", "--json"),
    "diff --all": ("diff", "--all", "--json"),
    "merge → migrate": ("merge", "LAST"),  # the last workspace (no collision of its own)
}
MARK = "import sys, time\nopen(sys.argv[1], 'a').write(repr(time.time()) + '\\n')\nsys.exit(1)\n"


def git(repo: Path, env: dict[str, str], *args: str) -> None:
    run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], repo, env)


def setup(work: Path, n: int) -> tuple[Path, dict[str, str]]:
    env = bench_env(work / "home", work / "user")
    (work / "user").mkdir()
    repo = work / "app"
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    (repo / "app" / "migrations").mkdir(parents=True)
    (repo / "app" / "migrations" / "0001_initial.py").write_text("")
    (work / "mark.py").write_text(MARK)
    (repo / "treefork.toml").write_text(f'migrate = "{sys.executable} {work / "mark.py"} {work / "marks"}"\n')
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "-m", "init")
    run(tf_cmd("init", "--no-import"), repo, env)
    root_url = run(tf_cmd("url", "root"), repo, env).stdout.strip()
    tables = ";".join(
        f"CREATE TABLE t{i} (id int PRIMARY KEY, v text); CREATE INDEX t{i}_v ON t{i} (v)" for i in range(12)
    )
    psql(root_url, tables)
    for i in range(n):
        name = f"w{i:02d}"
        log(f"  new {name}")
        run(tf_cmd("new", name), repo, env)
        where = Path(run(tf_cmd("ls", name, "--json"), repo, env).stdout.split('"path": "')[1].split('"')[0])
        table = 0 if i < 2 else i % 12  # w00 and w01 change the same table
        psql(run(tf_cmd("url", name), repo, env).stdout.strip(), f"ALTER TABLE t{table} ADD COLUMN c{i} int")
        number = 2 if i in (2, 3) else i + 2  # w02 and w03 add migration 0002
        (where / "app" / "migrations" / f"{number:04d}_{name}.py").write_text("")
        git(where, env, "add", ".")
        git(where, env, "commit", "-q", "-m", name)
    return repo, env


def psql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def measure(repo: Path, env: dict[str, str], rounds: int, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for r in range(rounds):
        order = list(COMMANDS) if r % 2 == 0 else list(reversed(COMMANDS))
        for label in order:
            marks = repo.parent / "marks"
            seen = len(marks.read_text().splitlines()) if marks.exists() else 0
            start = time.time()
            t = time.perf_counter()
            cp = run(tf_cmd(*(a.replace("LAST", f"w{n - 1:02d}") for a in COMMANDS[label])), repo, env, check=False)
            elapsed = time.perf_counter() - t
            if label == "merge → migrate":
                lines = marks.read_text().splitlines() if marks.exists() else []
                if len(lines) <= seen:
                    raise SystemExit(f"treefork merge never ran its migrate command: {cp.stderr}")
                elapsed = float(lines[seen]) - start  # to the first run: on the trial fork
            elif cp.returncode not in (0, 4):
                raise SystemExit(f"treefork {' '.join(COMMANDS[label])} failed: {cp.stderr}")
            times[label].append(elapsed)
    return times


def shown(label: str, n: int) -> str:
    if label == "merge → migrate":
        return f"`treefork merge w{n - 1:02d}` to its migrate command"
    return f"`treefork {' '.join(COMMANDS[label])}`"


def render(times: dict[str, list[float]], n: int, rounds: int) -> str:
    url = statistics.median(times["url"])
    machine = machine_description()
    lines = [
        "## `diff --all`, `ls --json` and `merge` with many workspaces",
        "",
        f"Generated by `python bench/bench_diff.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{n} workspaces on the local backend (each its own PostgreSQL cluster, all running), the root with 12 "
        f"tables; each workspace added a column and committed a migration, two pairs collide. {rounds} rounds, the "
        f"four commands in turn (alternating order), each a fresh `python -m treefork`. Machine: {machine.get('cores', '?')} "
        f"cores, shared (load average at the end: {load_average()}).",
        "",
        "| command | median | min–max | × `treefork url` | goal |",
        "|---|---|---|---|---|",
    ]
    for label, values in times.items():
        med = statistics.median(values)
        goal = f"≤ {GOALS[label]:.0f}× ({'met' if med / url <= GOALS[label] else 'not met'})" if label in GOALS else ""
        lines.append(
            f"| {shown(label, n)} | {med * 1000:.0f} ms | {min(values) * 1000:.0f}–"
            f"{max(values) * 1000:.0f} ms | {med / url:.1f}× | {goal} |"
        )
    lines += [
        "",
        "`diff --all` reads each workspace's fork point from its file and dumps each live database once, the dumps "
        "side by side (two per core), then, for the collisions, reads the catalog signature of each workspace whose "
        "dump changed (one query, for those kinds of object only). `ls --json` connects to no database: it keeps "
        "what git said of the migration files and of pairs of commits until a branch head moves (answers.json), "
        "runs one `git status` a workspace (side by side), and counts every cluster's and worktree's disk with "
        "`du` in threads beside them. `merge` starts the trial fork of the parent's database in a thread, and "
        "meanwhile reads the merged workspace's catalog signature, then from each other workspace only the kinds "
        "of object it changed (one connection each, side by side, while git lists the migration files; no "
        "pg_dump), and merges the code.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="treefork-bench-diff-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    work.chmod(0o711)  # as root, the server user passes through to the home
    try:
        log(f"setting up {args.workspaces} workspaces in {work}")
        repo, env = setup(work, args.workspaces)
        log("measuring")
        times = measure(repo, env, args.rounds, args.workspaces)
        section = render(times, args.workspaces, args.rounds)
        log(section)
        OWN.write_text(section)
        paste_section(DOC, BEGIN, END, section)
    finally:
        env = bench_env(work / "home", work / "user")
        run(tf_cmd("rm", "--force", *(f"w{i:02d}" for i in range(args.workspaces))), work / "app", env, check=False)
        run(tf_cmd("server", "stop"), work / "app", env, check=False)
        remove_tree(work)


if __name__ == "__main__":
    main()
