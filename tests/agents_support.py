"""The real agent CLIs for tests: installed from npm once into a cache outside HOME (tests redirect HOME),
pinned to the versions CONTRACTS C was verified with. A package that cannot be installed skips its tests
with the reason."""

from __future__ import annotations

import fcntl
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


def agent_bin(agent: str) -> Path:
    """The agent's executable, installing it on first use; pytest.skip with the reason when npm cannot."""
    package, version = PINNED[agent]
    prefix = cache_root() / f"{agent}-{version}"
    exe = prefix / "node_modules" / ".bin" / agent
    if exe.exists():
        return exe
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"{agent}: npm is not installed, so {package}@{version} cannot be installed")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f".{agent}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            env = {**os.environ, "npm_config_cache": str(cache_root() / "_npm"), "npm_config_update_notifier": "false"}
            cp = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), f"{package}@{version}"],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
            )
            if cp.returncode != 0 or not exe.exists():
                pytest.skip(f"{agent}: `npm install {package}@{version}` failed: {cp.stderr.strip()[-300:]}")
    return exe


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for an agent run: its own HOME, no real credentials, nothing but 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "ANTHROPIC_", "OPENAI_", "GEMINI_"))}
    env.update(
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
