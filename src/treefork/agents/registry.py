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
    return [claude, gemini, codex, oc]


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
    """The agent is used here: its executable is on PATH, or the project has its settings directory."""
    return shutil.which(agent.executable) is not None or (repo.main_root / agent.settings_dir).is_dir()


def names() -> list[str]:
    return [a.name for a in all_agents()]
