"""The agents treefork integrates with, each through its own hook system (docs/agents.md)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from treefork.agents import claude_settings
from treefork.errors import FatalError
from treefork.git import Repo


@dataclass(frozen=True)
class Agent:
    name: str
    executable: str  # on PATH when the agent is installed (for --agents)
    settings_dir: str  # a project directory that shows the agent is used here
    preflight: Callable[[Repo], None]
    install: Callable[[Repo], list[dict[str, str]]]
    uninstall: Callable[[Repo], list[dict[str, str]]]
    installed: Callable[[Repo], bool]
    # why the git hooks alone do not provision this agent's worktrees ("" when they do)
    why: str = ""


def _no_preflight(repo: Repo) -> None:
    return None


def _claude_preflight(repo: Repo) -> None:
    foreign = claude_settings.foreign_create_hooks(repo.main_root)
    if foreign:
        where, cmd = foreign[0]
        raise FatalError(
            f"{where} already has a WorktreeCreate hook ({cmd}); Claude Code would run both and treefork's "
            "worktree and database would be orphaned",
            hint=f"remove that hook from {where}, then run `treefork install --claude` again",
        )
    claude_settings.check_local_excluded(repo)


def all_agents() -> list[Agent]:
    from treefork.agents import opencode, session_start

    claude = Agent(
        "claude",
        "claude",
        ".claude",
        _claude_preflight,
        claude_settings.install,
        claude_settings.uninstall,
        claude_settings.installed,
        "Claude Code runs its git commands with every git hook off (2.1.332), so `claude -w` gets no database "
        "from the git hooks, and `.worktreeinclude` may copy the main .env in",
    )
    gemini = Agent("gemini", "gemini", ".gemini", _no_preflight, *session_start.gemini())
    codex = Agent("codex", "codex", ".codex", _no_preflight, *session_start.codex())
    oc = Agent(
        "opencode",
        "opencode",
        ".opencode",
        opencode.preflight,
        opencode.install,
        opencode.uninstall,
        opencode.installed,
    )
    qwen = Agent("qwen", "qwen", ".qwen", _no_preflight, *session_start.qwen())
    return [claude, gemini, codex, oc, qwen, *setup_file_agents()]


def setup_file_agents() -> list[Agent]:
    """The tools that run a per-repository setup file in each worktree they make (agents/setup_files.py)."""
    from treefork.agents import setup_files as sf

    return [
        Agent("kilo", "kilo", ".kilo", _no_preflight, _kilo_install, _kilo_uninstall, sf.kilo_installed),
        Agent("droid", "droid", ".factory", _no_preflight, sf.droid_install, sf.droid_uninstall, sf.droid_installed),
        Agent("cursor", "cursor-agent", ".cursor", _no_preflight, sf.cursor_install, sf.cursor_uninstall,
              sf.cursor_installed),
        Agent("conductor", "conductor", "conductor.json", _no_preflight, sf.conductor_install,
              sf.conductor_uninstall, sf.conductor_installed),
    ]  # fmt: skip


def _kilo_install(repo: Repo) -> list[dict[str, str]]:
    """`.kilo/setup-script` for Kilo's Agent Manager, and, with `kilo` on PATH, the project start command that
    `kilo worktree create` runs (it adds its worktrees with --no-checkout: no post-checkout)."""
    from treefork.agents import opencode, setup_files

    done = setup_files.kilo_install(repo)
    if shutil.which("kilo") is None:
        return [
            *done,
            {"hook": "kilo start command", "path": "kilo project settings", "action": "skipped: no kilo on PATH"},
        ]
    return done + opencode.install(repo, "kilo")[1:]


def _kilo_uninstall(repo: Repo) -> list[dict[str, str]]:
    from treefork.agents import opencode, setup_files

    done = setup_files.kilo_uninstall(repo)
    if opencode.installed(repo, "kilo"):
        done += opencode.uninstall(repo, "kilo")
    return done


def choose(repo: Repo, names: tuple[str, ...], *, detect: bool, every: bool = False) -> list[Agent]:
    agents = all_agents()
    if every:
        return agents
    by_name = {a.name: a for a in agents}
    chosen = [by_name[n] for n in names]
    if detect:
        chosen += [a for a in agents if a not in chosen and detected(repo, a)]
    return chosen


def used_without_integration(repo: Repo, chosen: list[Agent]) -> list[Agent]:
    """Agents used here whose worktrees the git hooks cannot reach, and that this install leaves out."""
    return [a for a in all_agents() if a.why and a not in chosen and detected(repo, a) and not a.installed(repo)]


def detected(repo: Repo, agent: Agent) -> bool:
    """The agent is used here: its executable is on PATH, or the project has its settings directory (or file)."""
    return shutil.which(agent.executable) is not None or (repo.main_root / agent.settings_dir).exists()


def names() -> list[str]:
    return [a.name for a in all_agents()]
