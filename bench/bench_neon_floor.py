"""Neon `treefork new` against the floor, and against the seed's post-checkout hook, in one run.

The floor of a Neon `new` is treefork's own work (Python, git, the env file: measured as `new` with no
latency and instant operations) plus one POST, the operation's own time and one poll. Both tools run against
tests/neon_fake.py with 200 ms operations, at 0 and 100 ms of latency per request. The seed hook (the
post-checkout script of the Neon guide, /work/shared/seed) runs under `git worktree add` with the real Neon
CLI (`neon` 5.0.1 from the npm cache) behind a shim that only adds `--no-analytics` (its analytics would
call track.neon.tech, which this offline machine cannot reach).

Run: python bench/bench_neon_floor.py  -> docs/benchmarks-neon-floor.md
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from neon_fake import PROJECT, FakeNeon, neon_env  # noqa: E402
from testing import caches  # noqa: E402

NPM_BIN = caches.entry("neonctl-5.0.1") / "node_modules" / ".bin"  # where the tests install it
SEED = Path("/work/shared/seed")
RUNS = 5
OP_SECONDS = 0.2
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}


def _run(cwd: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(args, cwd=cwd, env={**os.environ, **GIT_ENV, **env}, check=True, capture_output=True, timeout=300)


def _repo(root: Path, env: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    _run(root, env, "git", "init", "-q", "-b", "main")
    (root / "README.md").write_text("x\n")
    (root / ".gitignore").write_text(".env\n")
    _run(root, env, "git", "add", ".")
    _run(root, env, "git", "commit", "-q", "-m", "init")
    return root


def _timed(fake: FakeNeon, runs: int, step) -> list[tuple[float, int, float]]:
    """Per run: wall time, requests, and the span from sending the first request to the answer of the last
    (the fake handles a request `latency` after it is sent and answers at once)."""
    out = []
    for i in range(runs):
        before = len(fake.log)
        start = time.perf_counter()
        step(i)
        wall = time.perf_counter() - start
        stamps = fake.log_times[before:]
        out.append((wall, len(fake.log) - before, stamps[-1] - stamps[0] + fake.latency if stamps else 0.0))
    return out


def _median(runs: list[tuple[float, int, float]]) -> tuple[float, int, float]:
    return (
        statistics.median(r[0] for r in runs),
        round(statistics.median(r[1] for r in runs)),
        statistics.median(r[2] for r in runs),
    )


def bench_treefork(latency: float, op_seconds: float | None) -> list[tuple[float, int, float]]:
    fake = FakeNeon().start()
    try:
        with tempfile.TemporaryDirectory() as d:
            env = {**neon_env(fake), "TREEFORK_HOME": str(Path(d) / "home"), "HOME": d}
            env.pop("TREEFORK_NEON_POLL_SECONDS")  # the default schedule is what is measured
            repo = _repo(Path(d) / "app", env)
            _run(repo, env, sys.executable, "-m", "treefork", "init", "--backend", "neon", "--project-id", PROJECT)
            fake.latency, fake.op_seconds = latency, op_seconds
            return _timed(fake, RUNS, lambda i: _run(repo, env, sys.executable, "-m", "treefork", "new", f"w{i}"))
    finally:
        fake.stop()


def seed_hook() -> str:
    text = next(SEED.glob("*.txt")).read_text()
    return re.search(r"```bash\n(#!/bin/bash\nset -euo pipefail\n\n# Git post-checkout hook.*?)```", text, re.S).group(
        1
    )


def bench_seed(latency: float) -> tuple[float, int, float] | None:
    if not (NPM_BIN / "neon").exists():
        return None
    fake = FakeNeon().start()
    try:
        with tempfile.TemporaryDirectory() as d:
            shim = Path(d) / "bin"
            shim.mkdir()
            (shim / "neon").write_text(f'#!/bin/sh\nexec {NPM_BIN / "neon"} --no-analytics "$@"\n')
            (shim / "neon").chmod(0o755)
            env = {"NEON_API_HOST": fake.url, "HOME": d, "PATH": f"{shim}:{os.environ['PATH']}"}
            repo = _repo(Path(d) / "app", env)
            (repo / ".env").write_text(f"NEON_API_KEY={fake.api_key}\nNEON_PROJECT_ID={PROJECT}\nDATABASE_URL=x\n")
            hook = repo / ".git" / "hooks" / "post-checkout"
            hook.write_text(seed_hook())
            hook.chmod(0o755)
            fake.latency, fake.op_seconds = latency, OP_SECONDS
            return _median(
                _timed(fake, 3, lambda i: _run(repo, env, "git", "worktree", "add", "-q", "-b", f"s{i}", f"../s{i}"))
            )
    finally:
        fake.stop()


def main() -> None:
    lines = [
        "## Neon `treefork new` at the floor",
        "",
        f"Against `tests/neon_fake.py` with {OP_SECONDS * 1000:.0f} ms operations, at 0 and 100 ms of latency per "
        "request. The floor is one POST, the operation's own time and one poll: latency + operation + latency. "
        "*Neon time* is from sending the first request to the answer of the last, taken from the fake's log; "
        "*wall* is the whole command in a subprocess. The first `new` of a repository does not know how long an "
        "operation takes and polls at growing intervals; later ones wait the time the last one took "
        f"(median of runs 2-{RUNS}). The seed hook is the Neon guide's post-checkout script run by "
        "`git worktree add` (median of 3), with the real Neon CLI 5.0.1; it does not wait for the operation.",
        "",
        "| latency | floor | treefork: Neon time | vs floor | requests | wall | first `new`: Neon time, requests "
        "| seed hook: Neon time | requests | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for latency in (0.0, 0.1):
        runs = bench_treefork(latency, OP_SECONDS)
        wall, n, span = _median(runs[1:])
        floor = latency + OP_SECONDS + latency
        seed = bench_seed(latency)
        seed_cells = f"{seed[2]:.2f} s | {seed[1]} | {seed[0]:.2f} s" if seed else "not measured (no neon CLI) | - | -"
        lines.append(
            f"| {latency * 1000:.0f} ms | {floor:.2f} s | {span:.2f} s | {span / floor:.2f}x | {n} | {wall:.2f} s "
            f"| {runs[0][2]:.2f} s, {runs[0][1]} | {seed_cells} |"
        )
    lines.append("")
    out = ROOT / "docs" / "benchmarks-neon-floor.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
