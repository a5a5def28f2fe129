"""Neon `treefork new` against its floor, beside the seed's post-checkout hook, in one run: the one home of
treefork's Neon figures (docs/benchmarks-neon-floor.md; docs/benchmarks.md embeds it and the README's row
is made from it, both written here and checked by tests/test_docs.py).

The floor of a Neon `new` is one POST, the operation's own time and one poll: latency + operation + latency.
treefork runs against two fakes of Neon's API, tests/neon_fake.py as it is and with `strict=True` (only
what neon-openapi.yaml guarantees: no `connection_uris`, operations listed oldest first, 423 to a read that
meets a running operation), with 200 ms operations at 0 and 100 ms of latency per request. The whole
command's floor adds treefork's own work: `new` with no latency and operations that are done at once. The
seed hook (the post-checkout script of the Neon guide, /work/shared/seed) runs under `git worktree add`
with the real Neon CLI (`neon` 5.0.1 from the npm cache the tests fill) behind a shim that only adds
`--no-analytics` (its analytics would call track.neon.tech, which this offline machine cannot reach),
against the default fake. All of them take turns, run by run, so the machine's load falls on each alike.

Run: python bench/bench_neon_floor.py  -> docs/benchmarks-neon-floor.md, docs/benchmarks.md, README.md
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from neon_fake import PROJECT, FakeNeon, neon_env  # noqa: E402
from testing import caches  # noqa: E402

NPM_BIN = caches.entry("neonctl-5.0.1") / "node_modules" / ".bin"  # where the tests install it
SEED = Path("/work/shared/seed")
RUNS = 7
SEED_RUNS = 3
OP_SECONDS = 0.2
LATENCIES = (0.0, 0.1)
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
DOC = ROOT / "docs" / "benchmarks-neon-floor.md"
BEGIN, END = "<!-- BEGIN NEON (written by bench/bench_neon_floor.py) -->", "<!-- END NEON -->"
README_ROW = "| Neon `new`"


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


@dataclass
class Run:
    wall: float
    requests: int
    neon: float  # from sending the first request to the answer of the last (the fake answers at once)


@dataclass
class Subject:
    """One thing measured: a fake of its own, a repository, and the step a run times."""

    fake: FakeNeon
    step: Callable[[int], None]
    runs: list[Run] = field(default_factory=list)

    def time(self, i: int) -> None:
        before = len(self.fake.log)
        start = time.perf_counter()
        self.step(i)
        wall = time.perf_counter() - start
        stamps = self.fake.log_times[before:]
        neon = stamps[-1] - stamps[0] + self.fake.latency if stamps else 0.0
        self.runs.append(Run(wall, len(self.fake.log) - before, neon))

    def learned(self) -> Run:
        """The median of the runs after the first (the first `new` has not learned the operation's time)."""
        rest = self.runs[1:]
        return Run(
            statistics.median(r.wall for r in rest),
            round(statistics.median(r.requests for r in rest)),
            statistics.median(r.neon for r in rest),
        )

    def median(self) -> Run:
        rs = self.runs
        return Run(*(statistics.median(getattr(r, k) for r in rs) for k in ("wall", "requests", "neon")))


def treefork(d: Path, *, strict: bool, latency: float, op_seconds: float) -> Subject:
    fake = FakeNeon(strict=strict).start()
    env = {**neon_env(fake), "TREEFORK_HOME": str(d / "home"), "HOME": str(d)}
    env.pop("TREEFORK_NEON_POLL_SECONDS")  # the default schedule is what is measured
    repo = _repo(d / "app", env)
    _run(repo, env, sys.executable, "-m", "treefork", "init", "--backend", "neon", "--project-id", PROJECT)
    fake.latency, fake.op_seconds = latency, op_seconds
    return Subject(fake, lambda i: _run(repo, env, sys.executable, "-m", "treefork", "new", f"w{i}"))


def seed_hook() -> str:
    text = next(SEED.glob("*.txt")).read_text()
    found = re.search(r"```bash\n(#!/bin/bash\nset -euo pipefail\n\n# Git post-checkout hook.*?)```", text, re.S)
    assert found, "the seed's post-checkout hook is not in /work/shared/seed"
    return found.group(1)


def seed(d: Path, *, latency: float) -> Subject | None:
    if not (NPM_BIN / "neon").exists():
        return None
    fake = FakeNeon().start()
    shim = d / "bin"
    shim.mkdir(parents=True)
    (shim / "neon").write_text(f'#!/bin/sh\nexec {NPM_BIN / "neon"} --no-analytics "$@"\n')
    (shim / "neon").chmod(0o755)
    env = {"NEON_API_HOST": fake.url, "HOME": str(d), "PATH": f"{shim}:{os.environ['PATH']}"}
    repo = _repo(d / "app", env)
    (repo / ".env").write_text(f"NEON_API_KEY={fake.api_key}\nNEON_PROJECT_ID={PROJECT}\nDATABASE_URL=x\n")
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(seed_hook())
    hook.chmod(0o755)
    fake.latency, fake.op_seconds = latency, OP_SECONDS
    return Subject(fake, lambda i: _run(repo, env, "git", "worktree", "add", "-q", "-b", f"s{i}", f"../s{i}"))


def measure(d: Path) -> dict[str, Subject | None]:
    subjects: dict[str, Subject | None] = {}
    for api in ("default", "strict"):
        subjects[f"own {api}"] = treefork(d / f"own-{api}", strict=api == "strict", latency=0.0, op_seconds=0.0)
        for lat in LATENCIES:
            key = f"{api} {lat}"
            subjects[key] = treefork(
                d / key.replace(" ", "-"), strict=api == "strict", latency=lat, op_seconds=OP_SECONDS
            )
    for lat in LATENCIES:
        subjects[f"seed {lat}"] = seed(d / f"seed-{lat}", latency=lat)
    try:
        for i in range(RUNS):
            for key, subject in subjects.items():
                if subject is not None and (not key.startswith("seed") or i < SEED_RUNS):
                    subject.time(i)
    finally:
        for subject in subjects.values():
            if subject is not None:
                subject.fake.stop()
    return subjects


API_NAMES = {
    "default": "`neon_fake.py`",
    "strict": "`neon_fake.py`, `strict=True`",
}


def render(subjects: dict[str, Subject | None]) -> str:
    lines = [
        "## Neon `treefork new` at the floor",
        "",
        f"Written by `python bench/bench_neon_floor.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores). "
        f"{OP_SECONDS * 1000:.0f} ms operations, 0 and 100 ms of latency per request, against "
        "`tests/neon_fake.py` as it is (Neon's create response with `connection_uris`) and with `strict=True` "
        "(only what the spec guarantees: no `connection_uris`, operations listed oldest first, 423 to a read "
        "that meets a running operation). The **floor** is one POST, the operation's own time and one poll: "
        "latency + operation + latency. *Neon time* is from sending the first request to the answer of the "
        "last, from the fake's log (the fake spends a request's latency before handling it, so a poll sent "
        "before the operation ends can land as it ends: up to one latency under the floor). *Wall* is the "
        "whole command in a subprocess; its floor adds treefork's own work, `new` with no latency and "
        "operations done at once (Python, git, the registry, the env file; `git worktree add` runs beside the "
        f"requests). Medians of runs 2-{RUNS} (the first `new` of a repository has not learned how long an "
        "operation takes; its own column), all subjects taking turns run by run.",
        "",
        "| fake API | latency | floor | treefork: Neon time | vs floor | requests | first `new`: Neon time "
        "| vs floor | requests | wall | own work + floor | vs floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for api in ("default", "strict"):
        own = subjects[f"own {api}"]
        assert own is not None
        own_wall = own.learned().wall
        for lat in LATENCIES:
            s = subjects[f"{api} {lat}"]
            assert s is not None
            floor = lat + OP_SECONDS + lat
            r, first = s.learned(), s.runs[0]
            wall_floor = own_wall + floor
            lines.append(
                f"| {API_NAMES[api]} | {lat * 1000:.0f} ms | {floor:.2f} s | {r.neon:.2f} s | {r.neon / floor:.2f}× "
                f"| {r.requests} | {first.neon:.2f} s | {first.neon / floor:.2f}× | {first.requests} "
                f"| {r.wall:.2f} s | {own_wall:.2f} + {floor:.2f} = {wall_floor:.2f} s | {r.wall / wall_floor:.2f}× |"
            )
    lines += [
        "",
        f"The seed's hook, the Neon guide's post-checkout script run by `git worktree add` with the real Neon CLI "
        f"5.0.1 against `neon_fake.py`, {OP_SECONDS * 1000:.0f} ms operations (median of {SEED_RUNS}, in the same "
        "turns). It does not wait for the operation; each of its `neon` commands is a Node start-up and lists "
        "the project's branches first.",
        "",
        "| latency | seed hook: Neon time | requests | wall |",
        "|---|---|---|---|",
    ]
    for lat in LATENCIES:
        s = subjects[f"seed {lat}"]
        cells = "not measured (no neon CLI) | - | -" if s is None else _seed_cells(s.median())
        lines.append(f"| {lat * 1000:.0f} ms | {cells} |")
    return "\n".join(lines) + "\n"


def _seed_cells(r: Run) -> str:
    return f"{r.neon:.2f} s | {r.requests} | {r.wall:.2f} s"


def _cells(doc: str, first: str, second: str) -> list[str]:
    """The cells of the doc's table row whose first two cells are `first` and `second`."""
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0] == first and cells[1] == second:
            return cells
    raise LookupError(f"no row {first} | {second} in {DOC.name}")


def readme_row(doc: str) -> str:
    """The README's Neon row, made from docs/benchmarks-neon-floor.md alone: 100 ms of latency."""
    d = _cells(doc, API_NAMES["default"], "100 ms")
    s = _cells(doc, API_NAMES["strict"], "100 ms")
    seed_line = next(line for line in doc.splitlines() if line.startswith("| 100 ms |"))
    seed_cells = [c.strip() for c in seed_line.strip().strip("|").split("|")]
    return (
        f"{README_ROW}, 100 ms a request, {OP_SECONDS * 1000:.0f} ms operations | {d[3]} of Neon time against a floor "
        f"of {d[2]} (one `POST`, the operation, one poll): **{d[4]}**, {d[5]} requests; against a fake with only the "
        f"spec's required fields {s[4]}, {s[5]} requests; a repository's first `new` {d[7]}; the whole command "
        f"{d[9]}, {d[11]} its floor | the seed's hook: {seed_cells[1]} of Neon time, {seed_cells[2]} requests, "
        f"{seed_cells[3]} in all |"
    )


def embed(doc: str) -> None:
    """docs/benchmarks.md's Neon section and the README's Neon row, from the doc."""
    bench = ROOT / "docs" / "benchmarks.md"
    text = bench.read_text()
    head, rest = text.split(BEGIN, 1)
    bench.write_text(f"{head}{BEGIN}\n{embedded(doc)}{END}{rest.split(END, 1)[1]}")
    readme = ROOT / "README.md"
    lines = readme.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(README_ROW))
    lines[at] = readme_row(doc) + "\n"
    readme.write_text("".join(lines))


def embedded(doc: str) -> str:
    """The doc as docs/benchmarks.md shows it: one heading level down."""
    return re.sub(r"^## ", "### ", doc, flags=re.M)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        doc = render(measure(Path(d)))
    DOC.write_text(doc)
    embed(doc)
    print(doc)
    print(readme_row(doc))


if __name__ == "__main__":
    main()
