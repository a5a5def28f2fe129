"""The measurements of bench_forks.py, one function each; every one runs on one Site and returns plain data."""

from __future__ import annotations

import bisect
import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from common import SERVER_USER, Site, dir_allocated, env_url, free_bytes, memory_kb, remove_tree, tf_cmd
from psycopg import sql

# ---- a client writing to the parent -----------------------------------------------------------------


class Writer(threading.Thread):
    """A dev-server-like client: one connection as the workspace role, one INSERT (autocommit) every 10 ms.

    Remembers when each commit returned, so a child can be checked for every row committed before its fork."""

    def __init__(self, url: str, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.ids: list[int] = []
        self.times: list[float] = []
        self.errors: list[str] = []
        self.dropped = 0
        self._halt = threading.Event()
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS load_rows (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"
            )
            self.next_id = c.execute("SELECT coalesce(max(id), 0) + 1 FROM load_rows").fetchone()[0]
        self.conn = psycopg.connect(url, autocommit=True)
        self.backend_pid = self.conn.info.backend_pid

    def run(self) -> None:
        due = time.monotonic()
        while not self._halt.is_set():
            i, self.next_id = self.next_id, self.next_id + 1
            try:
                self.conn.execute("INSERT INTO load_rows (id) VALUES (%s)", (i,))
                self.times.append(time.monotonic())
                self.ids.append(i)
            except psycopg.Error as e:
                self.errors.append(str(e).strip()[:200])
                if self.conn.closed or self.conn.broken:
                    self.dropped += 1
                    try:
                        self.conn = psycopg.connect(self.url, autocommit=True)
                    except psycopg.Error as e2:
                        self.errors.append(str(e2).strip()[:200])
            due += self.interval
            time.sleep(max(0.0, due - time.monotonic()))

    def committed_before(self, t: float) -> list[int]:
        return self.ids[: bisect.bisect_left(self.times, t)]

    def finish(self) -> dict[str, Any]:
        self._halt.set()
        self.join()
        same = not self.conn.closed and self.conn.info.backend_pid == self.backend_pid
        alive = same and self.conn.execute("SELECT 1").fetchone() == (1,)
        self.conn.close()
        return {
            "rows_committed": len(self.ids),
            "client_errors": len(self.errors),
            "dropped_connections": self.dropped,
            "same_connection_alive_at_end": alive,
            "first_errors": self.errors[:5],
        }


def check_child(url: str, expected: list[int]) -> dict[str, int]:
    """How many of the rows committed before the fork the child holds."""
    with psycopg.connect(url, autocommit=True) as c:
        held = c.execute("SELECT count(*) FROM load_rows WHERE id = ANY(%s)", (expected,)).fetchone()[0]
    return {"expected": len(expected), "held": held, "missing": len(expected) - held}


# ---- 1. online fork under load ------------------------------------------------------------------------


def fork_under_load(site: Site, n: int) -> dict[str, Any]:
    writer = Writer(site.root_url())
    writer.start()
    time.sleep(1.0)
    forks, names = [], []
    try:
        for _ in range(n):
            name = site.next_name("load")
            t0 = time.monotonic()
            expected = writer.committed_before(t0)
            cp = site.tf("new", name, "--json", check=False)
            seconds = time.monotonic() - t0
            row: dict[str, Any] = {"name": name, "seconds": seconds, "ok": cp.returncode == 0}
            if cp.returncode == 0:
                names.append(name)
                rec = json.loads(cp.stdout)
                row.update(check_child(env_url(rec["env_file"]), expected), method=rec.get("clone_method"))
            else:
                row["error"] = cp.stderr.strip()[-300:]
            forks.append(row)
        time.sleep(0.5)
    finally:
        client = writer.finish()
        if names:
            site.tf("rm", "--force", "--delete-branch", *names, check=False)
    return {"n": n, "client": client, "forks": forks}


# ---- 5. parallel forks from a busy parent (and 3b. memory of all of them) -------------------------------------


def parallel_under_load(site: Site, n: int, idle_seconds: float) -> dict[str, Any]:
    writer = Writer(site.root_url())
    writer.start()
    time.sleep(1.0)
    names = [site.next_name("par") for _ in range(n)]
    t0 = time.monotonic()
    expected = writer.committed_before(t0)
    procs = [
        subprocess.Popen(
            tf_cmd("new", nm, "--json"),
            cwd=site.repo,
            env=site.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for nm in names
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    wall = time.monotonic() - t0
    client = writer.finish()
    made, failures, checks = [], [], []
    for nm, p, (out, err) in zip(names, procs, outs, strict=True):
        if p.returncode != 0:
            failures.append(err.strip()[-300:])
            continue
        made.append(nm)
        rec = json.loads(out)
        checks.append(
            {"name": nm, "internal_seconds": rec.get("seconds"), **check_child(env_url(rec["env_file"]), expected)}
        )
    time.sleep(idle_seconds)
    memory = cluster_memory(site, set(made))
    if made:
        site.tf("rm", "--force", "--delete-branch", *made, check=False)
    return {"n": n, "wall": wall, "failures": failures, "client": client, "children": checks, "memory": memory}


# ---- 3. memory ---------------------------------------------------------------------------------------------


def cluster_memory(site: Site, workspaces: set[str]) -> list[dict[str, Any]]:
    rows = []
    for c in site.status()["clusters"]:
        if c["name"] in workspaces and c.get("pid"):  # as `server status --json` names them (docs/json.md)
            rows.append({"workspace": c["name"], **memory_kb(int(c["pid"]))})
    return rows


def one_idle_cluster(site: Site, idle_seconds: float) -> dict[str, Any]:
    name = site.next_name("mem")
    site.tf("new", name)
    time.sleep(idle_seconds)
    rows = cluster_memory(site, {name, "root"})
    site.tf("rm", "--force", "--delete-branch", name)
    return {
        "child": next((r for r in rows if r["workspace"] == name), None),
        "root": next((r for r in rows if r["workspace"] == "root"), None),
    }


# ---- 2. fork time against the floor -------------------------------------------------------------------------


def fill(site: Site, target_bytes: int) -> int:
    """Grow the root database to about target_bytes with ~1 KB rows, then VACUUM (FREEZE) as `init` does after
    an import, and CHECKPOINT. Returns pg_database_size."""
    db = site.root()["dbname"]
    with site.admin(db) as c:
        c.execute("SET synchronous_commit = off")
        c.execute("CREATE TABLE IF NOT EXISTS bench_rows (id bigint PRIMARY KEY, pad text, n int)")
        c.execute(f'ALTER TABLE bench_rows OWNER TO "{site.root()["role"]}"')  # the app's, as if it made it
        c.execute("ALTER TABLE bench_rows ALTER COLUMN pad SET STORAGE EXTERNAL")  # uncompressed: real bytes
        for _ in range(4):
            size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            missing = target_bytes - size
            if missing < target_bytes * 0.03:
                break
            start = c.execute("SELECT coalesce(max(id), 0) FROM bench_rows").fetchone()[0]
            rows = max(1000, missing // 1100)
            for lo in range(start + 1, start + rows + 1, 200_000):
                hi = min(lo + 199_999, start + rows)
                c.execute(
                    "INSERT INTO bench_rows SELECT g, repeat(md5(g::text), 30), g %% 1000 FROM generate_series(%s::bigint, %s::bigint) g",
                    (lo, hi),
                )
        c.execute("VACUUM (FREEZE, ANALYZE)")
        c.execute("CHECKPOINT")
        return c.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def settle(site: Site) -> None:
    with site.admin() as c:
        c.execute("CHECKPOINT")
    os.sync()


def time_new(site: Site) -> dict[str, Any]:
    """`treefork new NAME` as a user or a git hook runs it (not `--json`, whose listing of the new workspace, git
    status and disk use included, is no part of the fork); the method is read afterwards, untimed."""
    name = site.next_name("tf")
    t0 = time.monotonic()
    cp = site.tf("new", name)
    seconds = time.monotonic() - t0
    inside = re.search(r" in (\d+\.\d+)s$", cp.stderr.strip().splitlines()[-1])
    rec = next(w for w in json.loads(site.tf("ls", "--json").stdout) if w.get("name") == name)
    site.tf("rm", "--force", "--delete-branch", name)
    return {
        "seconds": seconds,
        "internal_seconds": float(inside.group(1)) if inside else None,
        "method": rec.get("clone_method"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_floor(site: Site) -> dict[str, Any]:
    """The same fork by hand: pg_backup_start, cp --reflink=auto -a, pg_backup_stop + backup_label,
    pg_ctl start of the copy on another port, until it accepts a connection.

    The copy goes where treefork puts a child, <home>/clusters/<dir>/data: ext4 allocates a new file's inode in
    its directory's block group, and where ext4 runs without a journal (as here) it skips, one by one, the inodes
    freed in the last minute, so a copy elsewhere would meet another allocator state than treefork's."""
    holder = site.home / "clusters" / site.next_name("floor-")
    dst = holder / "data"
    holder.mkdir(mode=0o711)
    port, pw = free_port(), site.root()["admin_password"]
    with site.admin() as c:
        t0 = time.monotonic()
        start = c.execute("SELECT pg_walfile_name(pg_backup_start('bench floor', true))").fetchone()[0]
        cp = subprocess.run(
            ["cp", "--reflink=auto", "-a", str(site.root_data()), str(dst)], capture_output=True, text=True
        )
        t_copy = time.monotonic()
        vanished = all("No such file or directory" in line for line in cp.stderr.splitlines())
        if cp.returncode != 0 and not vanished:  # a file dropped during an online copy is no error (WAL replays it)
            raise RuntimeError(f"the floor's cp failed: {cp.stderr[-600:]}")
        stop, label = c.execute("SELECT pg_walfile_name(lsn), labelfile FROM pg_backup_stop(false)").fetchone()
        # the WAL up to the backup's end record, written by pg_backup_stop after cp copied pg_wal
        wal = site.root_data() / "pg_wal"
        segments = [str(wal / n) for n in sorted(os.listdir(wal)) if len(n) == 24 and start <= n <= stop]
        subprocess.run(["cp", "--reflink=auto", "-a", *segments, str(dst / "pg_wal")], check=True)
    (dst / "backup_label").write_text(label)
    if SERVER_USER:
        os.chown(dst / "backup_label", (dst / "PG_VERSION").stat().st_uid, (dst / "PG_VERSION").stat().st_gid)
    (dst / "postmaster.pid").unlink(missing_ok=True)
    site.pg_ctl("-D", str(dst), "-o", f"-p {port}", "-l", str(dst / "floor.log"), "-s", "start", "--no-wait")
    wait_accepting(dst, port, pw, t0)
    seconds = time.monotonic() - t0
    site.pg_ctl("-D", str(dst), "-m", "immediate", "stop", check=False)
    remove_tree(holder)
    return {"seconds": seconds, "copy_seconds": t_copy - t0}


def wait_accepting(data: Path, port: int, password: str, t0: float) -> None:
    """Until the copy accepts a connection, waited for as treefork waits for its child (cluster.wait_ready): the
    status line of postmaster.pid read every 2 ms (as `pg_ctl -w` reads it), a connection once it says ready or
    every 100 ms. Polling with connection attempts alone would slow the floor down: each one costs the starting
    server a backend."""
    next_try = t0
    while True:
        try:
            ready = (data / "postmaster.pid").read_text().splitlines()[7].strip() == "ready"
        except (OSError, IndexError):
            ready = False
        if ready or time.monotonic() >= next_try:
            try:
                psycopg.connect(
                    host="127.0.0.1",
                    port=port,
                    user="postgres",
                    password=password,
                    dbname="postgres",
                    connect_timeout=2,
                ).close()
                return
            except psycopg.OperationalError:
                next_try = time.monotonic() + 0.1
                log_text = (data / "floor.log").read_text() if (data / "floor.log").exists() else ""
                if time.monotonic() - t0 > 300 or "database system is shut down" in log_text:
                    raise RuntimeError(f"the floor copy did not start: {log_text[-600:]}") from None
        time.sleep(0.002)


def time_template(site: Site, *, clone: bool) -> dict[str, Any]:
    """The old design: CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY inside the parent cluster (the
    statement alone, connection already open)."""
    name = site.next_name("tpl")
    with site.admin() as c:
        if clone:
            c.execute("SET file_copy_method = clone")
        t0 = time.monotonic()
        c.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(site.root()["dbname"])
            )
        )
        seconds = time.monotonic() - t0
        c.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
    return {"seconds": seconds}


def fork_times(site: Site, repeats: int, *, clone: bool) -> dict[str, list[dict[str, Any]]]:
    """Interleaved: repeat i runs the three in a rotated order, each after a CHECKPOINT and sync."""
    kinds = ["new", "floor", "template"]
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for i in range(repeats):
        for k in kinds[i % 3 :] + kinds[: i % 3]:
            settle(site)
            if k == "new":
                out[k].append(time_new(site))
            elif k == "floor":
                out[k].append(time_floor(site))
            else:
                out[k].append(time_template(site, clone=clone))
    return out


# ---- 4. disk a child really costs once read -------------------------------------------------------------------


def read_everything(url: str, admin: psycopg.Connection) -> None:
    """Every page of every table, read through the app's URL; then a CHECKPOINT as the cluster's admin (the
    app's role may not: it is no superuser)."""
    with psycopg.connect(url, autocommit=True) as c:
        tables = c.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for (t,) in tables:
            c.execute(f"SELECT count(*) FROM {t}")
        c.execute("SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off")
        for (t,) in tables:
            c.execute(f"SELECT count(*) FROM {t}")  # a sequential scan of every page
    admin.execute("CHECKPOINT")  # whatever the reads dirtied is on disk now


def child_disk(site: Site) -> dict[str, Any]:
    settle(site)
    parent = dir_allocated(site.root_data())
    free0 = free_bytes(site.home)
    name = site.next_name("disk")
    rec = json.loads(site.tf("new", name, "--json").stdout)
    os.sync()
    after_fork = free0 - free_bytes(site.home)
    cluster = next(c for c in site.status()["clusters"] if c["name"] == name)
    own = site.cluster_record(cluster["id"])
    with site.admin(port=own["port"], password=own["admin_password"]) as admin:
        read_everything(env_url(rec["env_file"]), admin)
    os.sync()
    after_read = free0 - free_bytes(site.home)
    data = cluster["data_dir"]
    allocated = dir_allocated(Path(data))  # shared (reflinked) extents counted in full
    site.tf("rm", "--force", "--delete-branch", name)
    return {
        "child_allocated": allocated,
        "parent_bytes": parent,
        "after_fork": after_fork,
        "after_read": after_read,
        "method": rec.get("clone_method"),
    }


def add_unvacuumed(site: Site, target_bytes: int) -> int:
    """A table nobody vacuumed or read in the parent: its tuples' hint bits are unset."""
    with site.admin(site.root()["dbname"]) as c:
        c.execute("CREATE TABLE bench_raw (id bigint, pad text) WITH (autovacuum_enabled = off)")
        c.execute(f'ALTER TABLE bench_raw OWNER TO "{site.root()["role"]}"')  # the app's, as if it made it
        c.execute("ALTER TABLE bench_raw ALTER COLUMN pad SET STORAGE EXTERNAL")
        c.execute(
            "INSERT INTO bench_raw SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, %s) g",
            (max(1000, target_bytes // 1030),),
        )
        c.execute("CHECKPOINT")
        return c.execute("SELECT pg_table_size('bench_raw')").fetchone()[0]


def startup(site: Site, repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"url root": [], "--help": []}
    for _ in range(repeats):
        for args in (("url", "root"), ("--help",)):
            t0 = time.monotonic()
            site.tf(*args)
            out[" ".join(args)].append(time.monotonic() - t0)
    return out
