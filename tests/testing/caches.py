"""Caches the tests keep across runs (the agent CLIs and neonctl from npm, the application stacks from PyPI and
npm), outside HOME, which the tests redirect.

A cache is code the tests run, so it is this user's own: `<tmp>/treefork-test-cache-<uid>`, made 0700, refused
when another user owns it, others can write to it or it is a symlink (red-team round 3, finding 44: a predictable
shared path another local user could plant). Each install happens once, under a lock, and counts only when it
finished: a run killed halfway, or two workers at once, never leave a half-installed package that a later run trusts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

DONE = ".installed"


class UnsafeCache(Exception):
    pass


def expect_private(path: Path) -> Path:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeCache(f"{path} is not a plain directory")
    if st.st_uid != os.getuid():
        raise UnsafeCache(f"{path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCache(f"{path} can be written by others (mode {stat.S_IMODE(st.st_mode):o}): chmod go-w it")
    return path


def root() -> Path:
    """This user's cache root; TREEFORK_TEST_CACHE picks another (it is checked the same way)."""
    base = Path(
        os.environ.get("TREEFORK_TEST_CACHE") or Path(tempfile.gettempdir()) / f"treefork-test-cache-{os.getuid()}"
    )
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700, parents=True)
    return expect_private(base)


def entry(name: str) -> Path:
    path = root() / name
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    return expect_private(path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def once(prefix: Path, key: object, install: Callable[[Path], str]) -> str:
    """Run install(prefix) unless a finished install of the same key is there; returns its complaint, "" if none.
    A directory without the finished mark (a killed or failed install) is removed first."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with locked(expect_private(prefix.parent)):
        mark = prefix / DONE
        wanted = json.dumps(key, sort_keys=True)
        if mark.exists() and mark.read_text() == wanted:
            return ""
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(mode=0o700)
        problem = install(prefix)
        if not problem:
            mark.write_text(wanted)
        return problem


def npm_install(prefix: Path, specs: list[str], *, timeout: float = 900, omit_optional: bool = False) -> str:
    """npm install SPECS into prefix, once; returns npm's complaint, "" on success."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"

    omit = ["--omit=optional"] if omit_optional else []

    def run(into: Path) -> str:
        env = {**os.environ, "npm_config_cache": str(entry("_npm")), "npm_config_update_notifier": "false"}
        cp = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", *omit, "--prefix", str(into), *specs],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        return "" if cp.returncode == 0 else (cp.stderr.strip() or cp.stdout.strip())[-300:]

    return once(prefix, specs, run)


def _npm_view(spec: str, field: str, *, timeout: float = 60) -> object:
    npm = shutil.which("npm")
    if npm is None:
        return None
    env = {**os.environ, "npm_config_cache": str(entry("_npm")), "npm_config_update_notifier": "false"}
    try:
        cp = subprocess.run(
            [npm, "view", spec, field, "--json"], capture_output=True, text=True, env=env, timeout=timeout
        )
        return json.loads(cp.stdout) if cp.returncode == 0 and cp.stdout.strip() else None
    except (subprocess.TimeoutExpired, ValueError):
        return None


def npm_view_version(spec: str) -> str:
    """The newest version npm's registry has for spec (`name@latest`, `name@22`); "" without an answer."""
    found = _npm_view(spec, "version")
    if isinstance(found, list):
        found = max(found, key=version_key, default="")
    return found if isinstance(found, str) else ""


def npm_view_versions(name: str) -> list[str]:
    """Every published version of a package; [] without an answer."""
    found = _npm_view(name, "versions")
    return [v for v in found if isinstance(v, str)] if isinstance(found, list) else []


def version_key(version: str) -> list[int]:
    return [int(x) if x.isdigit() else -1 for x in version.replace("-", ".").split(".")]
