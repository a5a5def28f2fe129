"""Local backend benchmark: online forks of per-workspace PostgreSQL clusters, on ext4 and on reflink XFS.

    python bench/bench_forks.py [--quick] [--no-xfs] [--render-only]

Runs as root (the XFS part loop-mounts a sparse image formatted `mkfs.xfs -m reflink=1`). Both filesystems
get a treefork home and a git repo of their own; every measurement runs on both, side by side, alternating
which goes first. Everything it creates (clusters, worktrees, floor copies, the mount and the image) is
removed at the end. Writes bench/results-forks.json and docs/benchmarks.md (bench/report_forks.py); --quick
writes bench/results-forks-quick.json and prints the goals table only. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forks
from common import MB, Site, XfsLoop, fs_type, load_average, log, machine_description, make_workdir, remove_tree

RESULTS = Path(__file__).resolve().parent / "results-forks.json"

FULL = {"sizes_mb": [10, 100, 1000], "repeats": 7, "load_forks": 50, "parallel": 16, "unvacuumed_mb": 250, "idle": 5.0}
QUICK = {"sizes_mb": [10, 50], "repeats": 2, "load_forks": 8, "parallel": 8, "unvacuumed_mb": 20, "idle": 2.0}


def each_site(sites: list[Site], step: int, what: str, fn: Callable[[Site], Any], out: dict[str, Any]) -> None:
    """Run fn on every site, the first one alternating with step; a failure is recorded, not fatal."""
    order = sites if step % 2 == 0 else list(reversed(sites))
    for site in order:
        t0 = time.monotonic()
        try:
            out.setdefault(site.label, {})[what] = fn(site)
        except Exception:  # noqa: BLE001 - one failed measurement must not lose the others
            out.setdefault(site.label, {})[what] = {"error": traceback.format_exc()[-2000:]}
            log(f"  [{site.label}] {what} FAILED:\n{traceback.format_exc()[-1500:]}")
        log(f"  [{site.label}] {what} done in {time.monotonic() - t0:.1f}s")


def run_all(sites: list[Site], cfg: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    step = 0

    def phase(what: str, fn: Callable[[Site], Any]) -> None:
        nonlocal step
        log(f"== {what}")
        each_site(sites, step, what, fn, res)
        step += 1

    phase("setup", lambda s: _setup(s))
    phase("fill_small", lambda s: forks.fill(s, cfg["sizes_mb"][0] * MB))
    phase("startup", lambda s: forks.startup(s, 5))
    phase("load", lambda s: forks.fork_under_load(s, cfg["load_forks"]))
    phase("memory_one", lambda s: forks.one_idle_cluster(s, cfg["idle"]))
    phase("parallel", lambda s: forks.parallel_under_load(s, cfg["parallel"], cfg["idle"]))
    for size in cfg["sizes_mb"]:
        phase(f"fill_{size}", lambda s, size=size: forks.fill(s, size * MB))
        phase(f"times_{size}", lambda s: forks.fork_times(s, cfg["repeats"], clone=s.label == "xfs"))
    phase("disk_frozen", forks.child_disk)
    phase("add_unvacuumed", lambda s: forks.add_unvacuumed(s, cfg["unvacuumed_mb"] * MB))
    phase("disk_unvacuumed", forks.child_disk)
    return res


def _setup(site: Site) -> dict[str, Any]:
    t0 = time.monotonic()
    site.setup()
    site.tf("new", "warmup")  # first-use costs (binaries copied for the server user, caches) are not measured
    site.tf("rm", "--force", "--delete-branch", "warmup")
    with site.admin() as c:
        version = c.execute("SHOW server_version").fetchone()[0]
    return {"seconds": time.monotonic() - t0, "fs": fs_type(site.home), "postgresql": version}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, fewer repeats (a few minutes)")
    ap.add_argument("--no-xfs", action="store_true", help="ext4 (the default filesystem) only")
    ap.add_argument("--render-only", action="store_true", help="re-write docs/benchmarks.md from the saved results")
    args = ap.parse_args()
    import report_forks

    if args.render_only:
        report_forks.render(json.loads(RESULTS.read_text()))
        return 0
    cfg = QUICK if args.quick else FULL
    base = make_workdir("tfbench-", "/tmp")
    sites = [Site("ext4", base / "ext4")]
    (base / "ext4").mkdir(mode=0o755)
    xfs = None
    if not args.no_xfs:
        xfs = XfsLoop(base / "xfs.img", base / "xfs")
        if xfs.mount():
            sites.append(Site("xfs", make_workdir("site-", str(base / "xfs"))))
        else:
            log(f"no reflink XFS: {xfs.error}")
    started = time.monotonic()
    try:
        res = run_all(sites, cfg)
    finally:
        for site in sites:
            try:
                site.teardown()
            except Exception:  # noqa: BLE001 - tear down every site whatever happened to one
                log(f"[{site.label}] teardown: {traceback.format_exc()[-500:]}")
        if xfs is not None:
            xfs.cleanup()
        remove_tree(base)
    doc = {
        "mode": "quick" if args.quick else "full",
        "config": cfg,
        "machine": {**machine_description(), "load average (1/5/15 min, at the end)": load_average()},
        "total_seconds": time.monotonic() - started,
        "sites": res,
    }
    out = RESULTS if not args.quick else RESULTS.with_name("results-forks-quick.json")
    out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    log(f"results: {out} ({doc['total_seconds']:.0f}s)")
    if args.quick:  # a smoke run: docs/benchmarks.md keeps the full run's numbers
        log("\n".join(report_forks.goals_table(doc["sites"], cfg["sizes_mb"])))
    else:
        report_forks.render(doc)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # run the clean-up in main's finally


if __name__ == "__main__":
    os.umask(0o022)
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
