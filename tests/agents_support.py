"""The real agent CLIs for tests: the NEWEST release of each, installed from npm once per version into a cache
outside HOME (tests redirect HOME). The contracts drift (CONTRACTS C2), so the project, not its users, must see
it first: at session start `npm view <package> version` names the newest release; an install is kept per
version, so a new release is installed once and then reused.

To reproduce a failure with an older release: TREEFORK_TEST_AGENT_VERSIONS="claude=2.1.197,codex=0.169.0".
Without the registry, the newest release already in the cache is used. A CLI that cannot be installed skips
its tests with the reason. A failing test names every CLI (and version) it ran (conftest's report hook).
"""

from __future__ import annotations

import functools
import os
import platform
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing import caches

# agent -> (npm package, version range, executable); docs/agents.md lists the versions last verified
PACKAGES = {
    "claude": ("@anthropic-ai/claude-code", "latest", "claude"),
    "gemini": ("@google/gemini-cli", "latest", "gemini"),
    "codex": ("@openai/codex", "latest", "codex"),
    "opencode": ("opencode-ai", "latest", "opencode"),
    "copilot": ("@github/copilot", "latest", "copilot"),
    "qwen": ("@qwen-code/qwen-code", "latest", "qwen"),
    "kilo": ("@kilocode/cli", "latest", "kilo"),
    "droid": ("@factory/cli", "latest", "droid"),
    "auggie": ("@augmentcode/auggie", "latest", "auggie"),
    "node22": ("node", "22", "node"),  # Qwen Code needs node >= 22: the `node` package brings one from npm
}
# packages of the same version an agent's package needs (its platform binary), which the registry may lack for
# its newest release: the newest version both have is tested
ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x64"
COMPANIONS = {"kilo": [f"@kilocode/cli-linux-{ARCH}"], "droid": [f"@factory/cli-linux-{ARCH}"]}
PIN_ENV = "TREEFORK_TEST_AGENT_VERSIONS"
USED: dict[str, set[str]] = defaultdict(set)  # test node id -> "claude 2.1.332 (@anthropic-ai/claude-code)"


@dataclass(frozen=True)
class Cli:
    agent: str
    package: str
    version: str
    exe: Path

    def __str__(self) -> str:
        return f"{self.agent} {self.version} ({self.package})"


def pinned() -> dict[str, str]:
    spec = os.environ.get(PIN_ENV, "")
    pins = dict(part.strip().split("=", 1) for part in spec.split(",") if "=" in part)
    unknown = set(pins) - set(PACKAGES)
    if unknown:
        raise pytest.UsageError(f"{PIN_ENV}: unknown agent(s) {sorted(unknown)}; known: {sorted(PACKAGES)}")
    return pins


@functools.cache
def newest(agent: str) -> str:
    """The version to test: the pin, else the registry's newest, else the newest in the cache; "" if none."""
    if agent in pinned():
        return pinned()[agent]
    name, wanted, _ = PACKAGES[agent]
    if agent in COMPANIONS:  # the newest release that can run here: Kilo's can be ahead of its platform package
        common = set.intersection(*(set(caches.npm_view_versions(p)) for p in [name, *COMPANIONS[agent]]))
        out = max(common, key=caches.version_key, default="")
        if not out:  # none in common (Droid): the newest of each, the binary's own version after a '+'
            out = "+".join(caches.npm_view_version(f"{p}@latest") for p in [name, *COMPANIONS[agent]])
    else:
        out = caches.npm_view_version(f"{name}@{wanted}")
    if out:
        return out
    cached = sorted(
        (p.name.rsplit("@", 1)[1] for p in caches.entry("agent-clis").glob(f"{name.replace('/', '+')}@*")),
        key=caches.version_key,
    )
    return cached[-1] if cached else ""


@functools.cache
def _install(agent: str) -> Cli | str:
    name, _, exe_name = PACKAGES[agent]
    version = newest(agent)
    if not version:
        return f"no version of {name} found (npm view failed and nothing is cached)"
    own, _, binary = version.partition("+")
    spec = f"{name}@{own}"
    prefix = caches.entry("agent-clis") / f"{name}@{version}".replace("/", "+")
    extra = [f"{c}@{binary or own}" for c in COMPANIONS.get(agent, ())]
    problem = caches.npm_install(prefix, [spec, *extra], omit_optional=bool(binary))
    exe = prefix / "node_modules" / ".bin" / exe_name
    if problem:
        return f"`npm install {spec}` failed: {problem}"
    if not exe.exists():
        return f"{spec} did not install {exe_name}"
    return Cli(agent, name, version, exe)


def cli(agent: str) -> Cli:
    """The agent's newest CLI (installed once), or pytest.skip with the reason it cannot be installed.
    Recorded against the running test, so its failure report names the CLI and version."""
    got = _install(agent)
    if isinstance(got, str):
        pytest.skip(f"{agent}: {got}")
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    USED[test].add(str(got))
    return got


def install_all() -> dict[str, Cli]:
    """Kept for the module fixtures: a lazy view; agent_bin installs what a test asks for."""
    return {}


def agent_bin(clis: dict[str, Cli], agent: str) -> Path:
    """The agent's executable, or pytest.skip with the reason it could not be installed."""
    return cli(agent).exe


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
