"""The real agent CLIs for tests: installed from npm once into a cache outside HOME (tests redirect HOME),
pinned to the versions CONTRACTS C was verified with. A package that cannot be installed skips its tests
with the reason."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from conftest import run_tf
from testing import caches

PINNED = {
    "claude": ("@anthropic-ai/claude-code", "2.1.197"),
    "gemini": ("@google/gemini-cli", "0.61.0"),
    "codex": ("@openai/codex", "0.169.0"),
    "opencode": ("opencode-ai", "1.18.33"),
}


def install_all() -> dict[str, Path | str]:
    """Every pinned CLI in one npm run (about 30 s the first time, cached after); per package on failure.
    Maps each agent to its executable, or to the reason it could not be installed."""
    return _install_all()


@functools.cache
def _install_all() -> dict[str, Path | str]:
    prefix = caches.entry("agent-clis") / "-".join(f"{a}{v}" for a, (_, v) in sorted(PINNED.items()))
    specs = {a: f"{PINNED[a][0]}@{PINNED[a][1]}" for a in PINNED}
    found: dict[str, Path | str] = {}
    if not caches.npm_install(prefix, sorted(specs.values())):
        return {a: prefix / "node_modules" / ".bin" / a for a in PINNED}
    for a, spec in specs.items():  # one bad package must not skip the others
        alone = caches.entry("agent-clis") / spec.replace("/", "+")
        problem = caches.npm_install(alone, [spec])
        exe = alone / "node_modules" / ".bin" / a
        found[a] = (
            f"`npm install {spec}` failed: {problem}"
            if problem
            else exe
            if exe.exists()
            else f"{spec} did not install {a}"
        )
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
