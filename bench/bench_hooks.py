"""Overhead of treefork's git hooks: per commit (reference-transaction), per plain checkout (post-checkout),
and `git worktree add` with full provisioning vs without hooks. Writes docs/benchmarks-hooks.md.

Run: python bench/bench_hooks.py [--commits 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-hooks.md"


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    return env


def run(cwd: Path, *args: str) -> float:
    t = time.perf_counter()
    subprocess.run(list(args), cwd=cwd, env=git_env(), check=True, capture_output=True)
    return time.perf_counter() - t


def tf(cwd: Path, *args: str) -> None:
    cp = subprocess.run([sys.executable, "-m", "treefork", *args], cwd=cwd, capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"treefork {' '.join(args)} failed ({cp.returncode}): {cp.stderr.strip()}")


def make_repo(base: Path, name: str) -> Path:
    root = base / name
    root.mkdir()
    run(root, "git", "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".env\n")
    run(root, "git", "add", ".")
    run(root, "git", "commit", "-q", "-m", "init")
    (root / ".env").write_text("DATABASE_URL=postgresql://u:p@localhost/app\n")
    run(root, "git", "branch", "other")
    return root


def commits(root: Path, n: int) -> list[float]:
    return [run(root, "git", "commit", "-q", "--allow-empty", "-m", f"c{i}") for i in range(n)]


def checkouts(root: Path, n: int) -> list[float]:
    return [run(root, "git", "checkout", "-q", "other" if i % 2 == 0 else "main") for i in range(n)]


def worktree_adds(root: Path, n: int, tag: str) -> list[float]:
    return [
        run(root, "git", "worktree", "add", "-q", "-b", f"{tag}{i}", str(root.parent / f"{tag}{i}")) for i in range(n)
    ]


def session_starts(root: Path, n: int) -> tuple[list[float], list[float]]:
    """What every agent session start costs: `treefork sync --quiet` in a provisioned worktree (a no-op),
    beside a bare interpreter start (`python -c pass`), alternating."""
    worktree = root.parent / "h0"
    bare, synced = [], []
    for _ in range(n):
        bare.append(run(worktree, sys.executable, "-c", "pass"))
        synced.append(run(worktree, sys.executable, "-m", "treefork", "sync", "--quiet"))
    return bare, synced


def ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=50)
    ap.add_argument("--adds", type=int, default=5)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tf-bench-hooks-"))
    base.chmod(0o755)  # as root, the server runs as the `treefork` user, which must reach TREEFORK_HOME
    os.environ.setdefault("TREEFORK_HOME", str(base / "home"))
    try:
        plain, hooked = make_repo(base, "plain"), make_repo(base, "hooked")
        tf(hooked, "init", "--no-import")
        tf(hooked, "install")
        rows = [
            (
                "commit (reference-transaction)",
                ms(commits(plain, a.commits)),
                ms(commits(hooked, a.commits)),
                a.commits,
            ),
            (
                "plain checkout (post-checkout)",
                ms(checkouts(plain, a.commits)),
                ms(checkouts(hooked, a.commits)),
                a.commits,
            ),
            (
                "git worktree add (full provisioning)",
                ms(worktree_adds(plain, a.adds, "p")),
                ms(worktree_adds(hooked, a.adds, "h")),
                a.adds,
            ),
        ]
        bare, synced = session_starts(hooked, a.commits)
        rows.append(
            (
                "agent session start: `sync --quiet`, nothing to do (vs `python -c pass`)",
                ms(bare),
                ms(synced),
                a.commits,
            )
        )
        write(rows)
    finally:
        subprocess.run([sys.executable, "-m", "treefork", "server", "stop"], capture_output=True, cwd=str(base))
        shutil.rmtree(base, ignore_errors=True)


def write(rows: list[tuple[str, float, float, int]]) -> None:
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "## Git hook overhead",
        "",
        f"`python bench/bench_hooks.py` on {git_version}, local backend (embedded PostgreSQL), median of n runs.",
        "",
        "| operation | without hooks (ms) | with treefork hooks (ms) | overhead (ms) | n |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, without, with_, n in rows:
        lines.append(f"| {name} | {without:.1f} | {with_:.1f} | {with_ - without:+.1f} | {n} |")
    lines += [
        "",
        "A commit or plain checkout never starts Python: the sh scripts exit before it. "
        "`git worktree add` includes forking the database (a PostgreSQL cluster of its own, forked online, in a "
        "TREEFORK_HOME under /tmp: ext4 here) and writing `.env`.",
        "",
    ]
    text = "\n".join(lines)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
