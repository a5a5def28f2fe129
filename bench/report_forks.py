"""Renders bench/results-forks.json as docs/benchmarks.md, keeping the Neon and git-hook sections as they are."""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from common import fmt_bytes, fmt_ms, fmt_spread, stats

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
FS = {"ext4": "ext4 (/tmp)", "xfs": "XFS reflink (loop image)"}
XFS_1GB_GOAL, EXT4_RATIO_GOAL, PSS_GOAL_MB, DISK_GOAL = 0.400, 1.2, 40, 0.02


def met(ok: bool | None, /) -> str:  # noqa: FBT001 - a one-argument formatter
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def seconds(rows: list[dict[str, Any]], key: str = "seconds") -> dict[str, Any]:
    return stats([r.get(key) for r in rows])


def phase(site: dict[str, Any], name: str) -> Any:
    v = site.get(name)
    return None if v is None or (isinstance(v, dict) and "error" in v) else v


def load_table(sites: dict[str, Any]) -> list[str]:
    out = [
        (
            "| filesystem | forks | failed | client rows committed | client errors | dropped connections | "
            "writer's connection alive after | children holding every pre-fork row | rows missing | `treefork new` under load |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, site in sites.items():
        r = phase(site, "load")
        if r is None:
            out.append(f"| {FS[label]} | failed: see the JSON |||||||||")
            continue
        f, c = r["forks"], r["client"]
        ok = [x for x in f if x["ok"]]
        whole = sum(1 for x in ok if x["missing"] == 0)
        out.append(
            f"| {FS[label]} | {r['n']} | {len(f) - len(ok)} | {c['rows_committed']:,} | {c['client_errors']} | "
            f"{c['dropped_connections']} | {'yes' if c['same_connection_alive_at_end'] else 'no'} | {whole} / {r['n']} | "
            f"{sum(x['missing'] for x in ok)} | {fmt_spread(seconds(ok))} |"
        )
    return out


def pair_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    return stats([x["seconds"] / y["seconds"] for x, y in zip(a, b, strict=True) if y["seconds"]])


def times_table(label: str, site: dict[str, Any], sizes: list[int]) -> list[str]:
    out = [
        (
            "| database size | `treefork new` end to end | of which inside the CLI | floor (by hand) | of which the copy | "
            "new / floor (pairs) | `CREATE DATABASE … TEMPLATE` | goal |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        t, real = phase(site, f"times_{size}"), phase(site, f"fill_{size}")
        if t is None:
            out.append(f"| {size} MB | failed: see the JSON |||||||")
            continue
        new, floor = seconds(t["new"]), seconds(t["floor"])
        r = pair_ratio(t["new"], t["floor"])
        goal = ""
        if size >= 1000 and label == "xfs":
            goal = f"new ≤ 400 ms: {met(new['median'] <= XFS_1GB_GOAL)}"
        elif label == "ext4":
            goal = f"new ≤ 1.2× floor: {met(r['median'] <= EXT4_RATIO_GOAL)}"
        out.append(
            f"| {fmt_bytes(real)} | {fmt_spread(new)} | {fmt_spread(seconds(t['new'], 'internal_seconds'))} | "
            f"{fmt_spread(floor)} | {fmt_spread(seconds(t['floor'], 'copy_seconds'))} | "
            f"{r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f}) | {fmt_spread(seconds(t['template']))} | {goal} |"
        )
    return out


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def memory_table(sites: dict[str, Any], n: int) -> list[str]:
    out = [
        (
            "| filesystem | one idle workspace cluster: PSS (RSS, processes) | root, after the load above: PSS | "
            f"{n} idle clusters: PSS each, median (max) | {n} idle clusters: PSS total | goal ≤ 40 MB each |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for label, site in sites.items():
        one, par = phase(site, "memory_one"), phase(site, "parallel")
        if one is None or one.get("child") is None:
            out.append(f"| {FS[label]} | failed: see the JSON ||||")
            continue
        c = one["child"]
        many = [m["Pss"] for m in (par or {}).get("memory", [])]
        worst = max([c["Pss"], *many])
        out.append(
            f"| {FS[label]} | {mb(c['Pss'])} ({mb(c['Rss'])}, {c['processes']}) | {mb(one['root']['Pss'])} | "
            f"{mb(statistics.median(many)) if many else 'n/a'} ({mb(max(many)) if many else 'n/a'}) | "
            f"{mb(sum(many)) if many else 'n/a'} | {met(worst <= PSS_GOAL_MB * 1024)} |"
        )
    return out


def disk_table(sites: dict[str, Any]) -> list[str]:
    out = [
        (
            "| filesystem | parent | parent's tables | extra disk right after the fork | extra disk after every table is read | "
            "% of the parent | goal ≤ 2% (reflink) |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for label, site in sites.items():
        for kind, title in (
            ("disk_frozen", "frozen (VACUUM (FREEZE))"),
            ("disk_unvacuumed", "plus one never-vacuumed table"),
        ):
            d = phase(site, kind)
            if d is None:
                out.append(f"| {FS[label]} | {title}: failed, see the JSON ||||||")
                continue
            # ext4 shares the machine's root filesystem with everyone: its free space moves by hundreds of MB on
            # its own, so there the child's own allocated blocks are the measure (a full copy; nothing is shared)
            extra = d["after_read"] if label == "xfs" else d["child_allocated"]
            share = extra / d["parent_bytes"]
            raw = phase(site, "add_unvacuumed")
            note = title if kind == "disk_frozen" else f"{title} of {fmt_bytes(raw)}"
            goal = met(share <= DISK_GOAL) if label == "xfs" and kind == "disk_frozen" else ""
            out.append(
                f"| {FS[label]} | {fmt_bytes(d['parent_bytes'])} | {note} | "
                f"{fmt_bytes(d['after_fork']) if label == 'xfs' else 'n/a'} | {fmt_bytes(extra)} | "
                f"{share * 100:.1f}% | {goal} |"
            )
    return out


def parallel_table(sites: dict[str, Any]) -> list[str]:
    out = [
        (
            "| filesystem | `treefork new` at once | failures | total wall time | wall / N | each command, inside the CLI: median (max) | "
            "client errors | dropped connections | children holding every pre-fork row |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, site in sites.items():
        p = phase(site, "parallel")
        if p is None:
            out.append(f"| {FS[label]} | failed: see the JSON ||||||||")
            continue
        inside = seconds(p["children"], "internal_seconds")
        whole = sum(1 for c in p["children"] if c["missing"] == 0)
        out.append(
            f"| {FS[label]} | {p['n']} | {len(p['failures'])} | {fmt_ms(p['wall'])} | {fmt_ms(p['wall'] / p['n'])} | "
            f"{fmt_ms(inside['median'])} ({fmt_ms(inside['max'])}) | {p['client']['client_errors']} | "
            f"{p['client']['dropped_connections']} | {whole} / {p['n']} |"
        )
    return out


def startup_table(sites: dict[str, Any]) -> list[str]:
    out = ["| filesystem | `treefork url root` | `treefork --help` |", "|---|---|---|"]
    for label, site in sites.items():
        s = phase(site, "startup")
        if s:
            out.append(f"| {FS[label]} | {fmt_spread(stats(s['url root']))} | {fmt_spread(stats(s['--help']))} |")
    return out


def goals_table(sites: dict[str, Any], sizes: list[int]) -> list[str]:
    """One line per goal of issue 8, with the number that decides it."""
    out = ["| goal | filesystem | measured | |", "|---|---|---|---|"]
    for label, site in sites.items():
        ld = phase(site, "load")
        if ld:
            ok = [x for x in ld["forks"] if x["ok"]]
            missing = sum(x["missing"] for x in ok)
            c = ld["client"]
            good = len(ok) == ld["n"] and c["client_errors"] == 0 and c["dropped_connections"] == 0 and missing == 0
            out.append(
                f"| {ld['n']} forks under a 10 ms writer: 0 errors, 0 drops, every row | {FS[label]} | "
                f"{c['client_errors']} errors, {c['dropped_connections']} drops, {missing} rows missing, "
                f"{ld['n'] - len(ok)} failed forks | {met(good)} |"
            )
    for label, site in sites.items():
        for size in sizes:
            t = phase(site, f"times_{size}")
            if t is None:
                continue
            if label == "xfs" and size >= 1000:
                m = seconds(t["new"])["median"]
                out.append(f"| 1 GB `treefork new` ≤ 400 ms | {FS[label]} | {fmt_ms(m)} | {met(m <= XFS_1GB_GOAL)} |")
            if label == "ext4":
                r = pair_ratio(t["new"], t["floor"])["median"]
                out.append(
                    f"| `treefork new` ≤ 1.2× floor, {size} MB | {FS[label]} | {r:.2f}× | {met(r <= EXT4_RATIO_GOAL)} |"
                )
    for label, site in sites.items():
        one, par = phase(site, "memory_one"), phase(site, "parallel")
        if one and one.get("child"):
            worst = max([one["child"]["Pss"], *[m["Pss"] for m in (par or {}).get("memory", [])]])
            out.append(
                f"| PSS ≤ 40 MB per idle cluster | {FS[label]} | at most {mb(worst)} | {met(worst <= 40 * 1024)} |"
            )
    xfs = sites.get("xfs", {})
    d = phase(xfs, "disk_frozen")
    if d:
        share = d["after_read"] / d["parent_bytes"]
        out.append(
            f"| extra disk per child after a full read ≤ 2% | {FS['xfs']} | {share * 100:.1f}% | {met(share <= DISK_GOAL)} |"
        )
    for label, site in sites.items():
        p = phase(site, "parallel")
        if p:
            out.append(
                f"| {p['n']} `new` at once from a busy parent, 0 failures | {FS[label]} | {len(p['failures'])} failures, "
                f"{fmt_ms(p['wall'])} in all | {met(not p['failures'])} |"
            )
    return out


def pasted(name: str, title: str) -> str:
    """docs/benchmarks-<name>.md (written by bench_<name>.py), pasted under its own heading."""
    path = DOC.parent / f"benchmarks-{name}.md"
    text = path.read_text().strip() if path.exists() else "(not measured)"
    text = re.sub(r"^## ", "### ", text, count=1)
    marker = name.upper()
    return (
        f"## {title}\n\n<!-- BEGIN {marker} TABLES (pasted from docs/benchmarks-{name}.md) -->\n{text}\n"
        f"<!-- END {marker} TABLES -->\n"
    )


def render(doc: dict[str, Any]) -> None:
    sites, cfg = doc["sites"], doc["config"]
    machine = dict(doc["machine"])
    for label, site in sites.items():
        s = phase(site, "setup") or {}
        machine[f"{label} site"] = f"{s.get('fs', '?')}, PostgreSQL {s.get('postgresql', '?')}"
    machine["run"] = f"{doc['mode']} mode, {doc['total_seconds'] / 60:.1f} min; repeats per size: {cfg['repeats']}"
    lines = [
        "# treefork benchmarks",
        "",
        (
            "Generated by `python bench/bench_forks.py` (local backend; raw numbers in `bench/results-forks.json`), with the "
            "Neon and git-hook numbers pasted from their own runs. Each workspace, and the root, is its own PostgreSQL 18 "
            "cluster, forked online from its parent (docs/local-backend.md). Everything below ran in one run, on ext4 and "
            "on a reflink XFS loop image side by side, alternating which filesystem goes first. Times: median (min–max over "
            "the repeats). treefork runs as a fresh CLI process (`python -m treefork`), as agents and hooks run it. "
            "The machine is shared: its load average was often above its core count, so the spreads are wide."
        ),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine.items()],
        "",
        *[f"- {note}" for note in doc.get("notes", [])],
        "" if doc.get("notes") else None,
        "## Goals (issue 8)",
        "",
        *goals_table(sites, cfg["sizes_mb"]),
        "",
        "## 1. Online fork under load",
        "",
        (
            f"A client (one connection as the workspace role, like a dev server) inserts a row into the parent every 10 ms, "
            f"autocommit, while {cfg['load_forks']} workspaces are forked from it one after another with `treefork new`. "
            "Each child is then checked for every row whose commit had returned before its `new` started. "
            "Goal: 0 client errors, 0 dropped connections, every row."
        ),
        "",
        *load_table(sites),
        "",
        "## 2. Fork time against the floor",
        "",
        (
            "- **`treefork new NAME`**: the whole command as a user or a git hook runs it (git worktree and branch, the "
            "cluster forked and started, its passwords changed, the env file), measured from outside; *inside the CLI* "
            "is the time it reports itself (to 10 ms). Not `--json`: its listing of the new workspace (git status, disk "
            "use) is no part of the fork (runs before 2026-11-29 23:30 timed `new --json`)."
        ),
        (
            "- **floor**: the same fork by hand, on the same parent: `pg_backup_start(fast)`, `cp --reflink=auto -a` of "
            "the data directory (all of `pg_wal` included), `pg_backup_stop` and its `backup_label`, `pg_ctl start` of the "
            "copy on another port, until it accepts a connection: waited for as treefork waits for its own child, "
            "the status line of `postmaster.pid` read every 2 ms (as `pg_ctl -w` reads it) and a connection once it "
            "says ready. No git, no CLI. (Runs before 2026-11-29 23:30 polled with a connection attempt every 10 ms, "
            "which slowed the floor's start: each attempt costs the starting server a backend.)"
        ),
        (
            "- **`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`**: the previous design, the statement alone inside the "
            "parent cluster as its admin (`file_copy_method = clone` on XFS). It refuses a template anyone is connected to."
        ),
        (
            "- The database is a table of ~1 KB rows, then `VACUUM (FREEZE, ANALYZE)` (as `init` does after an import) and a "
            "CHECKPOINT; before each measurement a CHECKPOINT and `sync`. Each repeat runs the three in a rotated order."
        ),
        "",
    ]
    for label, site in sites.items():
        lines += [f"### {FS[label]}", "", *times_table(label, site, cfg["sizes_mb"]), ""]
    lines += [
        (
            "On XFS the copy itself (the floor's *of which the copy*) takes about 60 ms at every size: a reflink per file. "
            "The rest of the floor is `pg_backup_start`'s checkpoint and PostgreSQL's start from a backup (a `syncfs`, "
            "the replay, an end-of-recovery checkpoint). `treefork new` adds its own CLI start (last table), the "
            "registry, the parent's freeze check, the child's new passwords and a first login as the workspace's role; "
            "`git worktree add` runs beside the copy. The floor copies all of `pg_wal`, treefork only the segments the "
            "backup needs."
        ),
        "",
        "### Where the time goes on ext4 (issue 8's last goal)",
        "",
        (
            "- **File creation.** On ext4 the copy is a real one, and up to 100 MB it is mostly the creation of the "
            "cluster's ~1,300 files (four databases' catalogs). This machine's ext4 runs without a journal "
            "(`/sys/fs/ext4/vda/journal_task` is `<none>`), and ext4 without a journal does not hand out an inode "
            "freed in the last minute: `perf record -g` of a copy shows two thirds of its time in `recently_deleted()`, "
            "called from `find_inode_bit()` in `__ext4_new_inode()`, which checks the free inodes of the block group "
            "one by one. A file creation then costs up to ~1 ms (0.6–1.0 ms measured inside `new`, in an "
            "instrumented run: 1,280 creations, 0.73–1.35 s) where it otherwise costs tens of µs, and the same 1,300 files took 70–94 ms in one minute and "
            "436–585 ms a minute later: the cost depends on the recent history of the block group, which every process "
            "creating and deleting files under `/tmp` on this shared machine writes. That, not treefork, is why a 10 MB "
            "fork swings between 0.3 and 1.5 s here; in `/dev/shm` the whole `new` takes ~0.2 s."
        ),
        (
            "- **The floor was measured elsewhere.** ext4 puts a new file's inode in the block group of its directory. "
            "Until 2026-11-29 23:40 the floor copied into `<workdir>/floor` and treefork into `<home>/clusters`: two "
            "block groups with different histories, so at 10 and 100 MB the floor's files were cheap to create and "
            "treefork's were not (the run before this fix, treefork's own changes already in: `new` "
            "1.38 and 1.50 s, the floor 0.81 and 0.67 s, 1.83× and 2.19×; in an instrumented run treefork's copy alone "
            "took 0.8–1.5 s while the floor's whole fork took 0.5–1.0 s). Now the floor copies into "
            "`<home>/clusters/<dir>/data`, where treefork puts a child, and the two rise and fall together "
            "(the pairs of the table above)."
        ),
        (
            "- **Inside treefork** (changed in this run): the child's start was awaited with a connection attempt every "
            "10 ms, and each attempt made the starting server fork a backend to refuse it; it now watches the status "
            "line of `postmaster.pid`, as `pg_ctl -w` does, and connects once it says ready (in `/dev/shm` the wait "
            "fell from ~125 ms to ~15 ms). One admin session on the parent instead of two connections; the connection "
            'that finds the child ready changes its passwords; no second "is it running" login to a child this '
            "command just started; the copy walks with `os.scandir` and plain string paths; the wheel's version is "
            "read from its `dist-info` directory name rather than `importlib.metadata` (as root, every start). In "
            "`/dev/shm`, 9 rotated repeats of the whole command at 10 MB: 255 ms before, 195 ms after, the floor 84 ms."
        ),
        (
            "- **Not the cause:** `fsync`. A `new` calls it 20 times (the atomic writes of records, configuration, "
            "registry and env file), 11–15 ms in all on ext4. PostgreSQL's `recovery_init_sync_method = syncfs` and the "
            "end-of-recovery checkpoint apply to both sides (the floor copies `treefork.conf` with the data directory). "
            "The git subprocesses run beside the copy."
        ),
        "",
    ]
    lines += [
        "## 3. Memory of idle clusters",
        "",
        (
            "PSS from `/proc/<pid>/smaps_rollup`, summed over the postmaster and all its children, "
            f"{cfg['idle']:.0f} s after the cluster was last used (RSS beside it counts shared pages in full). "
            f"The {cfg['parallel']} are the children of the parallel run (5.), measured once they were idle."
        ),
        "",
        *memory_table(sites, cfg["parallel"]),
        "",
        "## 4. Disk per child",
        "",
        (
            "Free-space drop of the filesystem (statvfs, after CHECKPOINT and `sync`) from before `treefork new` to after "
            "the child read every table: a `SELECT count(*)` of each, then each again as a forced sequential scan, then a "
            "CHECKPOINT in the child. With data checksums on (PostgreSQL 18's default) the first read of a page whose hint "
            "bits are unset rewrites it, so an unvacuumed table stops sharing its blocks once a child reads it; a frozen one "
            "keeps sharing. On ext4 every child is a full copy: its row shows the blocks allocated to the child's data "
            "directory after the reads (the root filesystem is shared with the rest of the machine, so its free space is "
            "no measure there)."
        ),
        "",
        *disk_table(sites),
        "",
        "## 5. Parallel forks from a busy parent",
        "",
        f"{cfg['parallel']} `treefork new` started at once (2 cores), from one parent with the 10 ms writer of 1.",
        "",
        *parallel_table(sites),
        "",
        "## CLI start-up",
        "",
        *startup_table(sites),
        "",
        pasted("neon", "Neon backend"),
        pasted("hooks", "Git hooks and agent integration"),
        pasted("diff", "diff --all and ls with 20 workspaces"),
        "## Reproducing",
        "",
        "```",
        "sudo python bench/bench_forks.py            # full: 10 MB, 100 MB, 1 GB, 7 repeats, 50 forks under load",
        "sudo python bench/bench_forks.py --quick    # 10 and 50 MB, 2 repeats, 8 forks: prints the goals (~2 min)",
        "python bench/bench_forks.py --render-only   # re-write this page from bench/results-forks.json",
        "```",
        "",
        (
            "Root is needed for the XFS loop mount (`--no-xfs` skips it). Everything the run creates (clusters, worktrees, "
            "the image and its mount) is removed at the end."
        ),
        "",
    ]
    DOC.write_text("\n".join(line for line in lines if line is not None))
