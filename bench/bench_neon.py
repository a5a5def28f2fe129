"""`treefork new` end to end against the fake Neon API at 0 ms and 100 ms per request, vs the seed hook.

The seed hook makes at least 4 sequential neonctl calls (branches create, get, connection-string x2),
each a Node start-up plus its own requests. Run: python bench/bench_neon.py  -> docs/benchmarks-neon.md
"""

from __future__ import annotations

import os
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

NEONCTL = caches.entry("neonctl-5.0.1") / "node_modules" / ".bin" / "neonctl"  # where the tests install it
RUNS = 3


def _run(cwd: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(args, cwd=cwd, env={**os.environ, **env}, check=True, capture_output=True, timeout=300)


def _repo(tmp: Path, env: dict[str, str]) -> Path:
    repo = tmp / "app"
    repo.mkdir()
    genv = {
        **env,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    _run(repo, genv, "git", "init", "-q", "-b", "main")
    (repo / "README.md").write_text("x\n")
    _run(repo, genv, "git", "add", ".")
    _run(repo, genv, "git", "commit", "-q", "-m", "init")
    _run(repo, env, sys.executable, "-m", "treefork", "init", "--backend", "neon", "--project-id", PROJECT)
    return repo


def bench_new(latency: float) -> tuple[float, int]:
    fake = FakeNeon().start()
    try:
        with tempfile.TemporaryDirectory() as d:
            env = {**neon_env(fake), "TREEFORK_HOME": str(Path(d) / "home"), "HOME": d}
            repo = _repo(Path(d), env)
            fake.latency = latency
            times, counts = [], []
            for i in range(RUNS):
                before = len(fake.log)
                start = time.perf_counter()
                _run(repo, env, sys.executable, "-m", "treefork", "new", f"w{i}")
                times.append(time.perf_counter() - start)
                counts.append(len(fake.log) - before)
            return statistics.median(times), max(counts)
    finally:
        fake.stop()


def neonctl_startup() -> float | None:
    if not NEONCTL.exists():
        return None
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([str(NEONCTL), "--version"], capture_output=True, check=True, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rows = [(lat, *bench_new(lat)) for lat in (0.0, 0.1)]
    startup = neonctl_startup()
    lines = [
        "## Neon backend: `treefork new` against the fake Neon API",
        "",
        f"Median of {RUNS} runs of `treefork new` (git worktree + Neon branch + operation polling at 0.05 s + .env), "
        "end to end in a subprocess, against `tests/neon_fake.py` (operations finish after 2 polls).",
        "",
        "| per-request latency | wall time | HTTP requests |",
        "|---|---|---|",
    ]
    lines += [f"| {lat * 1000:.0f} ms | {t:.2f} s | {n} |" for lat, t, n in rows]
    lines.append("")
    if startup is None:
        lines.append(
            "Seed hook minimum: neonctl is not installed here, so its start-up was not measured; the hook makes "
            "at least 4 sequential neonctl calls, each a Node start-up plus its requests."
        )
    else:
        seed_min = 4 * startup
        lines.append(
            f"Seed hook minimum: `neonctl --version` starts in {startup:.2f} s (median), so its >= 4 sequential neonctl calls "
            f"cost >= {seed_min:.2f} s in Node start-ups alone, before any request; each also lists branches first "
            f"(create: 2 requests, get: 2, connection-string: 5 each), i.e. >= 14 sequential requests "
            f"(>= {seed_min + 1.4:.2f} s at 100 ms/request), and it never waits for the branch to be ready."
        )
    lines.append("")
    out = ROOT / "docs" / "benchmarks-neon.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
