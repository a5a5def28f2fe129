"""Real application stacks for tests/test_apps.py: their packages installed from PyPI and npm once a test
session, into a cache of this user's alone; an app's repository made from tests/apps/<stack>/base; its own
commands run with nothing but its .env to find its database.

The cache is `<the session's shared temporary home>/apps` (made by mkdtemp, 0700), or
TREEFORK_TEST_APPS_CACHE to keep the installs across sessions. Either way it is a directory this user made
0700, checked before use: a directory someone else made or can write into is refused, never used (the agent
CLIs' cache at a predictable temporary path had no such check).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SHARED_HOME, git

APPS = Path(__file__).parent / "apps"

PYTHON_PACKAGES = (
    "django",
    "dj-database-url",
    "python-dotenv",
    "psycopg[binary]",
    "sqlalchemy",
    "alembic",
    "pydantic-settings",
    "pytest",
)
NODE_PACKAGES = ("knex", "pg", "dotenv")


def cache_root() -> Path:
    chosen = os.environ.get("TREEFORK_TEST_APPS_CACHE")
    return private_dir(Path(chosen) if chosen else Path(os.environ[SHARED_HOME]) / "apps")


def private_dir(path: Path) -> Path:
    """PATH as a directory of this user's alone: made 0700 if missing; refused (the test fails with the fix)
    if it is a symlink, not ours, or open to anyone else."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        pytest.fail(
            f"{path} is not a directory of this user's alone (mode 0700, not a symlink): refusing to install into "
            "or run from it; remove it, or set TREEFORK_TEST_APPS_CACHE to a new path",
            pytrace=False,
        )
    return path


@contextmanager
def _locked(root: Path, what: str) -> Iterator[None]:
    """One installer at a time across xdist workers."""
    with open(root / f"{what}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _installed(done: Path, command: list[str], env: dict[str, str]) -> None:
    """Run an install command unless DONE marks it made; DONE is written only after it succeeded."""
    if done.exists():
        return
    cp = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        why = f"`{' '.join(command[:4])} …` failed: {(cp.stderr or cp.stdout).strip()[-600:]}"
        pytest.fail(why, pytrace=False) if os.environ.get("CI") else pytest.skip(why)
    done.write_text("")


def python_stack() -> Path:
    """The bin directory of a venv with Django, SQLAlchemy, Alembic, psycopg 3 and pytest (the latest)."""
    root = cache_root()
    venv = root / "python"
    with _locked(root, "python"):
        if not (venv / ".done").exists():
            shutil.rmtree(venv, ignore_errors=True)  # what a failed install left
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q"]
        _installed(venv / ".done", [*pip, *PYTHON_PACKAGES], {**os.environ, "PIP_CACHE_DIR": str(root / "pip")})
    return venv / "bin"


def node_stack() -> Path:
    """An npm prefix with knex, pg and dotenv (the latest); its node_modules."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    root = cache_root()
    prefix = root / "node"
    with _locked(root, "node"):
        prefix.mkdir(mode=0o700, exist_ok=True)
        env = {**os.environ, "npm_config_cache": str(root / "npm"), "npm_config_update_notifier": "false"}
        command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), *NODE_PACKAGES]
        _installed(prefix / ".done", command, env)
    return prefix / "node_modules"


@dataclass
class App:
    """An application's git repository and the environment its own commands run in."""

    repo: Path
    path_dirs: list[Path]

    def env(self) -> dict[str, str]:
        """The process environment less every database setting and pytest's variables: the app finds its
        database in its .env alone, as it would on a developer's machine."""
        dropped = ("DATABASE_URL", "POSTGRES_", "PG", "PYTEST_", "DJANGO_", "VIRTUAL_ENV", "NODE_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        env["PATH"] = os.pathsep.join([*map(str, self.path_dirs), env.get("PATH", "")])
        return env

    def run(self, cwd: Path, *command: str) -> str:
        """The app's own command in CWD; its output, or the test fails with it."""
        cp = subprocess.run(
            command, cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        assert cp.returncode == 0, f"`{' '.join(command)}` in {cwd} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}"
        return cp.stdout

    def commit_overlay(self, worktree: Path, overlay: str, message: str) -> None:
        """Copy tests/apps/<stack>/<overlay> over the worktree and commit it: the workspace's feature."""
        shutil.copytree(APPS / self.stack / overlay, worktree, dirs_exist_ok=True)
        git(worktree, "add", "-A")
        git(worktree, "commit", "-q", "-m", message)

    @property
    def stack(self) -> str:
        return self.repo.name


def make_app(tmp_path: Path, stack: str, *, env_text: str, migrate: str, path_dirs: list[Path]) -> App:
    """The app's repository: tests/apps/<stack>/base, its .env (untracked) and a treefork.toml naming its
    migrate command, committed."""
    repo = tmp_path / stack
    shutil.copytree(APPS / stack / "base", repo)
    (repo / ".env").write_text(env_text)
    (repo / "treefork.toml").write_text(f"migrate = {migrate!r}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"the {stack} app")
    return App(repo, path_dirs)
