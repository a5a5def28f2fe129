"""The real agent CLIs for tests: installed from npm once into a cache outside HOME (tests redirect HOME),
pinned to the versions CONTRACTS C was verified with. A package that cannot be installed skips its tests
with the reason."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import run_tf

PINNED = {
    "claude": ("@anthropic-ai/claude-code", "2.1.197"),
    "gemini": ("@google/gemini-cli", "0.61.0"),
    "codex": ("@openai/codex", "0.169.0"),
    "opencode": ("opencode-ai", "1.18.33"),
}


def cache_root() -> Path:
    return Path(os.environ.get("TREEFORK_AGENT_CLI_CACHE") or Path(tempfile.gettempdir()) / "treefork-agent-clis")


def _install(prefix: Path, specs: list[str]) -> str:
    """npm install into prefix (once, under a lock); returns npm's complaint, empty on success."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    prefix.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "npm_config_cache": str(cache_root() / "_npm"), "npm_config_update_notifier": "false"}
    cp = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), *specs],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    return "" if cp.returncode == 0 else cp.stderr.strip()[-300:]


@functools.cache
def install_all() -> dict[str, Path | str]:
    """Every pinned CLI in one npm run (about 30 s the first time, cached after); per package on failure.
    Maps each agent to its executable, or to the reason it could not be installed."""
    prefix = cache_root() / "-".join(f"{a}{v}" for a, (_, v) in sorted(PINNED.items()))
    prefix.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path | str] = {}
    with open(cache_root() / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        exes = {a: prefix / "node_modules" / ".bin" / a for a in PINNED}
        missing = [a for a, exe in exes.items() if not exe.exists()]
        if missing and _install(prefix, [f"{PINNED[a][0]}@{PINNED[a][1]}" for a in missing]):
            for a in missing:  # one bad package must not skip the others
                problem = _install(prefix / a, [f"{PINNED[a][0]}@{PINNED[a][1]}"])
                exes[a] = prefix / a / "node_modules" / ".bin" / a
                if problem:
                    found[a] = f"`npm install {PINNED[a][0]}@{PINNED[a][1]}` failed: {problem}"
        for a, exe in exes.items():
            found.setdefault(a, exe if exe.exists() else f"{PINNED[a][0]}@{PINNED[a][1]} did not install {a}")
    return found


def agent_bin(clis: dict[str, Path | str], agent: str) -> Path:
    """The agent's executable, or pytest.skip with the reason it could not be installed."""
    exe = clis[agent]
    if isinstance(exe, str):
        pytest.skip(f"{agent}: {exe}")
    return exe


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for an agent run: its own HOME, no real credentials, no treefork on PATH, and
    nothing but 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "ANTHROPIC_", "OPENAI_", "GEMINI_"))}
    # no treefork on the agent's PATH: the hooks must work from what install recorded
    given = extra.pop("PATH", env.get("PATH", ""))
    path = [d for d in given.split(os.pathsep) if d and not (Path(d) / "treefork").exists()]
    env.update(
        PATH=os.pathsep.join(path),
        HOME=str(home),
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        NO_PROXY="127.0.0.1,localhost",
        **extra,
    )
    return env


def ls(repo: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads(run_tf(repo, "ls", "--json").out)}
