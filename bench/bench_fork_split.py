"""Where `treefork new`'s time goes: the split between its steps (TREEFORK_TIMING, treefork/debug.py), and the
whole command side by side with another tree's and with the floor (bench/forks.py), in rotated order.

    sudo python bench/bench_fork_split.py --fs xfs --size-mb 1000 --repeats 12 [--base-src /path/to/other/src]

--fs xfs loop-mounts a reflink XFS image as bench_forks.py does (root only); ext4 works in /tmp. --base-src
runs `new` of that tree too (PYTHONPATH), for a before/after on the same parent in the same minutes. Prints
medians (min-max); CPU is what the `new` process and the processes it waited for (git, pg_dump, pg_ctl) used.
Writes nothing to docs/. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forks
from common import MB, Site, XfsLoop, make_workdir, remove_tree


def time_new(site: Site, *, timing: Path | None) -> dict[str, Any]:
    """`treefork new`, then `rm`: wall, the CLI's own figure, CPU, and (timing) each step's milliseconds."""
    name = site.next_name("split")
    if timing is not None:
        timing.unlink(missing_ok=True)
    before, t0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic(), time.time()
    cp = site.tf("new", name)
    seconds, w1, after = time.monotonic() - t0, time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    site.tf("rm", "--force", "--delete-branch", name)
    inside = re.search(r" in (\d+\.\d+)s$", cp.stderr.strip().splitlines()[-1])
    out: dict[str, Any] = {
        "ms": seconds * 1000,
        "inside_ms": float(inside.group(1)) * 1000 if inside else float("nan"),
        "cpu_ms": (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000,
    }
    if timing is not None:
        out["split"] = steps(timing, started=w0, ended=w1)
    return out


def steps(timing: Path, *, started: float, ended: float) -> dict[str, float]:
    """The `new` process's lines (its first pid), summed by step, plus its start-up and exit."""
    rows = [line.split() for line in timing.read_text().splitlines()]
    rows = [r for r in rows if r[0] == rows[0][0]]
    split: dict[str, float] = {"(start-up to new:begin)": (float(rows[0][5]) - started) * 1000}
    for _, _, point, _, delta, _ in rows:
        split[point] = split.get(point, 0.0) + float(delta[1:])
    split["(last step to exit)"] = (ended - float(rows[-1][5])) * 1000
    return split


def run(site: Site, repeats: int, base_src: str | None) -> dict[str, list[dict[str, Any]]]:
    kinds = ["branch", "floor"] + (["base"] if base_src else [])
    res: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    timing = site.workdir / "timing.log"
    for i in range(repeats):
        for kind in kinds[i % len(kinds) :] + kinds[: i % len(kinds)]:
            forks.settle(site)
            if kind == "floor":
                res[kind].append({"ms": forks.time_floor(site)["seconds"] * 1000})
                continue
            extra = {"TREEFORK_TIMING": str(timing)} if kind == "branch" else {"PYTHONPATH": str(base_src)}
            site.env.update(extra)
            try:
                res[kind].append(time_new(site, timing=timing if kind == "branch" else None))
            finally:
                for key in extra:
                    site.env.pop(key)
    return res


def report(res: dict[str, list[dict[str, Any]]]) -> None:
    floor = statistics.median(r["ms"] for r in res["floor"])
    for kind, rows in res.items():
        line = f"{kind:7s} {_spread([r['ms'] for r in rows])} ms, {statistics.median(r['ms'] for r in rows) / floor:.2f}× floor"
        if kind != "floor":
            line += f"; inside the CLI {_spread([r['inside_ms'] for r in rows])} ms, CPU {_spread([r['cpu_ms'] for r in rows])} ms"
        print(line)
    splits = [r["split"] for r in res["branch"]]
    for point in splits[0]:
        print(f"    {point:28s} {_spread([s.get(point, 0.0) for s in splits])} ms")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fs", choices=["ext4", "xfs"], default="ext4")
    ap.add_argument("--size-mb", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--base-src", help="another tree's src/ directory, whose `new` runs beside this one's")
    args = ap.parse_args()
    os.umask(0o022)
    work = make_workdir("tfsplit-", "/tmp")
    xfs, site = None, None
    try:
        if args.fs == "xfs":
            xfs = XfsLoop(work / "xfs.img", work / "xfs")
            if not xfs.mount():
                print(f"no reflink XFS: {xfs.error}", file=sys.stderr)
                return 1
            site = Site("xfs", make_workdir("site-", str(work / "xfs")))
        else:
            (work / "ext4").mkdir(mode=0o755)
            site = Site("ext4", work / "ext4")
        site.setup()
        site.tf("new", "warmup")  # first-use costs are not measured (bench_forks.py does the same)
        site.tf("rm", "--force", "--delete-branch", "warmup")
        forks.fill(site, args.size_mb * MB)
        print(f"{args.fs}, {args.size_mb} MB, {args.repeats} rotated repeats, load {os.getloadavg()}")
        report(run(site, args.repeats, args.base_src))
    finally:
        if site is not None:
            site.teardown()
        if xfs is not None:
            xfs.cleanup()
        remove_tree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
