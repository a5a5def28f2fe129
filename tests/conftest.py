"""Shared fixtures: real git repos in tmp dirs, one real embedded PostgreSQL server per test session.

Tests drive the real CLI in a subprocess (`tf(...)`), exactly as agents and git hooks do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from testing import home_guard, in_process
from testing.older_server import OlderServer, older_server

# tests/apps holds real applications' files (their own tests among them), run by tests/test_apps.py in the
# apps' own environments: never collected here.
collect_ignore = ["apps"]

ENV_SAMPLE = (
    "# app settings\r\n"
    "export APP_MODE=dev\r\n"
    'SECRET_TOKEN="abc#def=ghi"  # keep me\r\n'
    "DATABASE_URL='postgresql://me:pw@localhost:5432/app_dev'\r\n"
    "NEON_API_KEY=napi_test_secret_never_copy\r\n"
)


@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_tf(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 180,
    fresh_process: bool = False,
) -> Run:
    """`treefork ARGS` in CWD. In this process (`treefork.cli.main`), as fast as a function call, unless
    fresh_process asks for the real `python -m treefork` (an interpreter's start-up is what is tested), the
    run may kill its process (TREEFORK_CRASH_AT), it runs beside others (a thread of the test's), or
    TREEFORK_TEST_SUBPROCESS=1 asks for it every time. Git hooks and agents run treefork in a subprocess
    either way."""
    if (
        fresh_process
        or os.environ.get("TREEFORK_TEST_SUBPROCESS") == "1"
        or "TREEFORK_CRASH_AT" in (env or {})
        or threading.current_thread() is not threading.main_thread()
    ):
        result = _run_subprocess(cwd, args, env=env, input=input, timeout=timeout)
    else:
        result = in_process.run(cwd, args, env=env or {}, input=input)
    if check and result.rc != 0:
        raise AssertionError(
            f"treefork {' '.join(args)} failed ({result.rc}):\nstdout: {result.out}\nstderr: {result.err}"
        )
    return result


def _run_subprocess(
    cwd: Path, args: tuple[str, ...], *, env: dict[str, str] | None, input: str | None, timeout: float
) -> Run:
    cp = subprocess.run(
        [sys.executable, "-m", "treefork", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Run(cp.returncode, cp.stdout, cp.stderr)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    cp = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and cp.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {cp.stderr}")
    return cp


SHARED_HOME = "TREEFORK_TEST_SHARED_HOME"

# Property tests: 400 examples each, as CI runs them; `--hypothesis-profile=dev` (the inner loop) runs 50.
settings.register_profile("ci", max_examples=400)
settings.register_profile("dev", max_examples=50)
settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """Test repositories and their worktrees go to memory too (see _fast_dir): git's writes and fsyncs on a
    shared disk were a third of the fast loop's time. The agent CLIs' npm cache stays on disk, across runs.

    Bytecode is cached whatever PYTHONDONTWRITEBYTECODE says (these machines set it): otherwise every
    interpreter the tests start (git hooks, agent hooks) compiles treefork from source, and every xdist worker
    rewrites and compiles every test module."""
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if not hasattr(config, "workerinput"):  # the one process, or xdist's controller: its workers inherit this
        os.environ[SHARED_HOME] = tempfile.mkdtemp(prefix="treefork-test-shared-", dir=_fast_dir())
        # the session's own machine-wide port reservations (ports.py), not /var/tmp's: every worker's home shares it
        os.environ["TREEFORK_PORT_REGISTRY"] = os.path.join(os.environ[SHARED_HOME], "ports")
    fast = _fast_dir()
    if fast is None or os.environ.get("TREEFORK_TEST_TMPDIR") == "keep":
        return
    os.environ["TMPDIR"] = fast
    tempfile.tempdir = fast


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ.pop(SHARED_HOME, ""), ignore_errors=True)


def share_what_is_made_once(home: Path) -> None:
    """The PostgreSQL binaries linked for the server user (as root) and the pristine cluster (initdb's output)
    are made once a home. The tests' homes (one a worker, and the session server's) link to one set, made by
    the first worker that needs it: each is about half a second of CPU."""
    from treefork.backends.local import pristine
    from treefork.locks import FileLock

    shared = Path(os.environ[SHARED_HOME])
    with FileLock(shared / "made.lock", timeout=300, what="the tests' shared home").held():
        if not (shared / "pristine").is_dir():
            saved = os.environ["TREEFORK_HOME"]
            os.environ["TREEFORK_HOME"] = str(shared)  # where the server user's copy of the binaries goes
            try:
                pristine.empty_data_dir(shared)
            finally:
                os.environ["TREEFORK_HOME"] = saved
    for part in ("dist", "pristine"):
        if (shared / part).is_dir():
            (home / part).symlink_to(shared / part)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the agent CLIs (the `agent_clis` fixture) is an `agent_cli` test, whatever its module.
    The tests marked `waits` go first, then those marked `long` (the longest jobs first). With
    `--maxschedchunk=1`, as the inner loop runs, xdist hands tests out one at a time from the front: their
    waiting overlaps the other workers' work, and no worker ends the run alone on a long test."""
    for item in items:
        if "agent_clis" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.agent_cli)
    items.sort(key=lambda item: (item.get_closest_marker("waits") is None, item.get_closest_marker("long") is None))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing agent-CLI test names every CLI, and its version, that it ran (agents_support.cli): the
    contracts drift with each release, and the report must say which one."""
    outcome = yield
    report = outcome.get_result()
    used = sys.modules.get("agents_support")
    clis = sorted(used.USED.get(item.nodeid, ())) if used is not None else []
    if report.failed and clis:
        report.sections.append(("agent CLIs", "this test ran: " + ", ".join(clis)))
        report.longrepr = f"[agent CLIs: {', '.join(clis)}]\n{report.longrepr}"


def _fast_dir() -> str | None:
    """Where the session's PostgreSQL clusters live: memory (/dev/shm) where there is room, since every fork
    creates ~1,300 files and creating a file on these machines' disks costs about a millisecond.
    TREEFORK_TEST_HOME_DIR picks another place (say, a reflink filesystem)."""
    chosen = os.environ.get("TREEFORK_TEST_HOME_DIR")
    if chosen:
        return chosen
    shm = Path("/dev/shm")
    try:
        usage = shutil.disk_usage(shm)
    except OSError:
        return None
    return str(shm) if os.access(shm, os.W_OK) and usage.free > 4 << 30 else None


@pytest.fixture(scope="session", autouse=True)
def treefork_home() -> Path:
    """One PostgreSQL server for the whole session, in a home of its own (never the user's)."""
    home = Path(tempfile.mkdtemp(prefix="treefork-test-home-", dir=_fast_dir()))
    fake_user_home = Path(tempfile.mkdtemp(prefix="treefork-test-user-"))
    xdg = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
    saved = {k: os.environ.get(k) for k in ("TREEFORK_HOME", "HOME", *xdg, "NEON_API_KEY", "NEON_API_HOST")}
    os.environ["TREEFORK_HOME"] = str(home)
    os.environ["HOME"] = str(fake_user_home)  # nothing may write into the real home directory
    for var in xdg:
        os.environ.pop(var, None)
    os.environ.pop("NEON_API_KEY", None)
    os.environ.pop("NEON_API_HOST", None)
    share_what_is_made_once(home)
    (fake_user_home / ".gitconfig").write_text(
        "[user]\n\tname = t\n\temail = t@example.invalid\n[init]\n\tdefaultBranch = main\n"
    )
    yield home
    subprocess.run([sys.executable, "-m", "treefork", "server", "stop"], capture_output=True, cwd="/")
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(fake_user_home, ignore_errors=True)


@dataclass
class PgServer:
    """A PostgreSQL 18 server of the tests' own (not a treefork workspace): a source to import from, a server
    for `init --server-url`, a peer for the libpq seam."""

    port: int
    password: str
    log: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def names(self, conn: Any = None) -> set[tuple[str, str]]:
        """Every database and role on the server, as ("database", name) and ("role", name)."""
        with contextlib.nullcontext(conn) if conn is not None else self.admin() as c:
            rows = c.execute(
                "SELECT 'database', datname FROM pg_database UNION ALL SELECT 'role', rolname FROM pg_roles"
            )
        return {(str(kind), str(name)) for kind, name in rows}

    def drop_all_but(self, kept: set[tuple[str, str]]) -> None:
        """Drop the databases, then the roles, that are not in kept (what a test made), over one connection."""
        from treefork.backends.local.libpq import SQL, Ident

        with self.admin() as conn:
            made = self.names(conn) - kept
            for kind in ("database", "role"):
                for _, name in sorted(n for n in made if n[0] == kind):
                    verb = "DROP DATABASE {} WITH (FORCE)" if kind == "database" else "DROP ROLE {}"
                    conn.execute(SQL.of(verb, Ident(name)))

    @contextlib.contextmanager
    def dropping_what_is_made(self) -> Iterator[None]:
        """The databases and roles made inside this block are dropped at its end, whatever happened."""
        kept = self.names()
        try:
            yield
        finally:
            self.drop_all_but(kept)

    def fresh_database(self, name: str) -> str:
        """An empty database NAME on this server (dropped first if a failed run left it); its URL."""
        from treefork.backends.local.libpq import SQL, Ident

        with self.admin() as conn:
            conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(name)))
            conn.execute(SQL.of("CREATE DATABASE {}", Ident(name)))
        return self.url(name)

    def admin(self) -> Any:
        from treefork.backends.local import libpq

        return libpq.connect(
            host="127.0.0.1", port=self.port, user="postgres", password=self.password, dbname="postgres"
        )


@pytest.fixture(scope="session")
def pg_server(treefork_home: Path) -> PgServer:
    from treefork.backends.local.store import ClusterStore, new_record

    store = ClusterStore(Path(tempfile.mkdtemp(prefix="treefork-test-pg-")))
    share_what_is_made_once(store.home)
    rec = new_record("tests", "<root>", dbname="scratch", role="scratch", parent=None)
    cluster = store.register(rec)
    store.initdb(cluster, rec)
    yield PgServer(port=rec.port, password=rec.admin_password, log=cluster.log)
    cluster.destroy()
    shutil.rmtree(store.home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg15() -> Iterator[OlderServer]:
    """Debian's PostgreSQL 15, a server the user runs (`--server-url`, a dev database to import): one a worker,
    started on first use; the test skips, saying so, where the package is not installed."""
    with older_server(15) as server:
        yield server


@pytest.fixture(autouse=True)
def untouched_real_home() -> Iterator[None]:
    """Fails the test that wrote into the real home directory."""
    before = home_guard.snapshot(home_guard.REAL_HOME)
    yield
    changed = home_guard.changes(before, home_guard.snapshot(home_guard.REAL_HOME))
    assert not changed, f"this test wrote into the real home {home_guard.REAL_HOME}: {changed}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "app")


@pytest.fixture(autouse=True)
def no_cluster_outlives_its_test(treefork_home: Path) -> Iterator[None]:
    """Stop and remove the PostgreSQL clusters a test made (a session makes hundreds); those of module-wide
    repos, made before the test, stay."""
    from treefork.backends.local.store import ClusterStore

    store = ClusterStore(treefork_home)
    before = set(os.listdir(store.dir)) if store.dir.is_dir() else set()
    yield
    for name in set(os.listdir(store.dir)) - before if store.dir.is_dir() else ():
        store.cluster(name).destroy()


def make_repo(root: Path) -> Path:
    """A git repo with one commit and a main-worktree .env (CRLF, export, quotes, a secret key): a copy of
    one that git made once a run (three git processes fewer a repository; the tests make about 200)."""
    shutil.copytree(_repo_template(), root, symlinks=True)
    (root / ".env").write_bytes(ENV_SAMPLE.encode())
    return root


def _repo_template() -> Path:
    template = Path(os.environ[SHARED_HOME]) / "repo-template"
    if template.is_dir():
        return template
    draft = Path(tempfile.mkdtemp(prefix="repo-template-", dir=template.parent))
    draft.chmod(0o755)  # as mkdir made it: the copies keep this mode
    git(draft, "init", "-q", "-b", "main")
    (draft / "README.md").write_text("hello\n")
    (draft / ".gitignore").write_text(".env\n")
    git(draft, "add", ".")
    git(draft, "commit", "-q", "-m", "init")
    try:
        draft.rename(template)
    except OSError:  # another worker made it first
        shutil.rmtree(draft)
    return template


@pytest.fixture
def tf_repo(repo: Path) -> Path:
    """A repo where `treefork init` (local backend) has run."""
    run_tf(repo, "init", "--no-import")
    return repo


@pytest.fixture
def own_home() -> Iterator[dict[str, str]]:
    """A treefork home of the test's own, with no server in it (under the temp dir, which the server's user
    can reach as root): the environment that points treefork at it. Its clusters are stopped after."""
    home = Path(tempfile.mkdtemp(prefix="treefork-test-own-home-"))
    share_what_is_made_once(home)
    env = {"TREEFORK_HOME": str(home)}
    yield env
    run_tf(home, "server", "stop", env=env, check=False)
    shutil.rmtree(home, ignore_errors=True)


def server_clusters(cwd: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """`treefork server status --json`'s clusters."""
    clusters: list[dict[str, Any]] = json.loads(run_tf(cwd, "server", "status", "--json", env=env).out)["clusters"]
    return clusters


@pytest.fixture
def tf_server_repo(repo: Path, pg_server: PgServer) -> Iterator[Path]:
    """A repo where `treefork init --server-url` has run, on the session's own PostgreSQL server: for the tests
    whose subject is not how a database branch is made (git hooks, env files, names, refusals, agents' hooks).
    A branch there is one CREATE DATABASE on a running server, where the local backend's is a new cluster (a
    copy of ~1,300 files, a postmaster and its processes, all removed after): that was most of the fast loop's
    CPU. The local backend, the default, keeps `tf_repo` for its own tests and the end-to-end ones."""
    with pg_server.dropping_what_is_made():
        run_tf(repo, "init", "--server-url", pg_server.url())
        yield repo


def as_sample_spells(url: str) -> str:
    """A workspace URL as an env file made from ENV_SAMPLE spells it: its DATABASE_URL says `localhost`, and
    treefork keeps an app's loopback spelling (`treefork url` prints the backend's own, 127.0.0.1)."""
    return url.replace("@127.0.0.1:", "@localhost:", 1)


def db_url(worktree: Path, var: str = "DATABASE_URL") -> str:
    from dotenv import dotenv_values

    value = dotenv_values(worktree / ".env").get(var)
    assert value, f"{var} missing in {worktree / '.env'}"
    return value
