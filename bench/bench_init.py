"""How a new root's database is made: `CREATE DATABASE ... STRATEGY WAL_LOG` (PostgreSQL's default) against
`STRATEGY FILE_COPY` (what `treefork init` uses), side by side on one fresh cluster, alternating.

Measured, for the statement and the checkpoint after it (the first fork's pg_backup_start makes one: WAL_LOG
fills shared buffers with template1's pages, which that checkpoint writes out; FILE_COPY copies the files and
checkpoints itself): the CPU time of every process of the cluster (the backend, the checkpointer, the WAL
writer), from /proc/<pid>/schedstat (nanoseconds), and the WAL written.
Writes the "Making a root's database" section of docs/benchmarks.md.

    python bench/bench_init.py            # 15 of each
    python bench/bench_init.py --quick    # 5 of each
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import descendants, log, run  # noqa: E402

from treefork.backends.local import libpq  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN INIT TABLE -->", "<!-- END INIT TABLE -->"
STRATEGIES = ("WAL_LOG", "FILE_COPY")


def _cluster_cpu_ns(postmaster: int) -> int:
    """CPU time so far of the postmaster and every process below it that is still there."""
    total = 0
    for pid in descendants(postmaster):
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def _make(conn: libpq.Connection, postmaster: int, strategy: str, name: str) -> tuple[float, int]:
    """(server CPU seconds, WAL bytes) of one CREATE DATABASE."""
    before_lsn = conn.one("SELECT pg_current_wal_insert_lsn()::text")
    assert before_lsn and before_lsn[0]
    cpu = _cluster_cpu_ns(postmaster)
    conn.execute(libpq.SQL.of("CREATE DATABASE {} STRATEGY " + strategy, libpq.Ident(name)))
    conn.execute("CHECKPOINT")  # what the first fork's pg_backup_start does: WAL_LOG's pages are written here
    cpu = _cluster_cpu_ns(postmaster) - cpu
    wal = conn.one("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint", (before_lsn[0],))
    assert wal and wal[0]
    conn.execute(libpq.SQL.of("DROP DATABASE {}", libpq.Ident(name)))
    return cpu / 1e9, int(wal[0])


FILESYSTEMS = {"ext4 (/tmp)": "/tmp", "tmpfs (/dev/shm)": "/dev/shm"}


def measure(repeats: int, where: str) -> dict[str, dict[str, list[float]]]:
    work = Path(tempfile.mkdtemp(prefix="treefork-bench-init-", dir=where))
    work.chmod(0o711)  # as root, the server user passes through to the home
    os.environ["TREEFORK_HOME"] = str(work / "home")
    repo = work / "app"
    repo.mkdir()
    env = dict(os.environ)
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "i"], repo, env)
    run([sys.executable, "-m", "treefork", "init", "--no-import"], repo, env)
    rid = json.loads((repo / ".git" / "treefork" / "registry.json").read_text())["repo_id"]
    cluster = work / "home" / "clusters" / f"{rid}-root"
    rec = json.loads((cluster / "cluster.json").read_text())
    postmaster = int((cluster / "data" / "postmaster.pid").read_text().splitlines()[0])
    results: dict[str, dict[str, list[float]]] = {s: {"cpu": [], "wal": []} for s in STRATEGIES}
    try:
        conn = libpq.connect(
            host="127.0.0.1", port=rec["port"], user="postgres", password=rec["admin_password"], dbname="postgres"
        )
        with conn:
            for i in range(repeats):
                for strategy in STRATEGIES if i % 2 == 0 else reversed(STRATEGIES):
                    cpu, wal = _make(conn, postmaster, strategy, f"bench_{strategy.lower()}_{i}")
                    results[strategy]["cpu"].append(cpu)
                    results[strategy]["wal"].append(wal)
    finally:
        run([sys.executable, "-m", "treefork", "server", "stop"], repo, env, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return results


def render(results: dict[str, dict[str, dict[str, list[float]]]], repeats: int) -> str:
    rows, ratios = [], []
    for fs, by_strategy in results.items():
        cpu = {s: statistics.median(by_strategy[s]["cpu"]) for s in STRATEGIES}
        for s in STRATEGIES:
            spread = f"{min(by_strategy[s]['cpu']) * 1000:.1f}–{max(by_strategy[s]['cpu']) * 1000:.1f}"
            wal = statistics.median(by_strategy[s]["wal"]) / 1024 / 1024
            rows.append(f"| {fs} | `STRATEGY {s}` | {cpu[s] * 1000:.1f} ms ({spread}) | {wal:.2f} MB |")
        ratios.append(f"{fs}: {cpu['FILE_COPY'] / cpu['WAL_LOG']:.2f}×")
    return "\n".join(
        [
            BEGIN,
            f"`CREATE DATABASE` of a new root's database in a fresh cluster, then the checkpoint the first fork "
            f"makes, {repeats} of each, alternating (`python bench/bench_init.py`). CPU: every process of the "
            "cluster, from `/proc/<pid>/schedstat`; median (min–max).",
            "",
            "| filesystem | statement, then CHECKPOINT | server CPU | WAL written |",
            "|---|---|---|---|",
            *rows,
            "",
            f"FILE_COPY's CPU as a share of WAL_LOG's: {', '.join(ratios)}. It writes no WAL for the copy: "
            "`treefork init` uses FILE_COPY.",
            END,
        ]
    )


def write_doc(section: str) -> None:
    text = DOC.read_text()
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), section, text, flags=re.S)
    else:
        text = text.replace("## CLI start-up", f"## Making a root's database\n\n{section}\n\n## CLI start-up")
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    results = {fs: measure(repeats, where) for fs, where in FILESYSTEMS.items()}
    section = render(results, repeats)
    log(section)
    write_doc(section)


if __name__ == "__main__":
    main()
