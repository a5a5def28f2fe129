"""Agents in detached tmux sessions: `new NAME --agent CMD [--prompt TEXT]`, `attach NAME`, and the agent
state that `ls` shows.

The session is named `<repo>-<repo id>/<workspace>`: the repository's id keeps two checkouts both called
`web` apart, and a workspace name tmux would change ('.' and ':' become '_') gets a hash of the name, so
`agent.y` and `agent_y` are two sessions. It runs in the worktree with its env file loaded, carries the
worktree's path in a user option (`@treefork-worktree`) so `rm` kills only the session it started, and
stays after the agent exits (remain-on-exit) so `ls` can say `exited`.
An agent profile is a name in treefork.toml's [agents] table; anything else is taken as a command line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
from pathlib import Path

from treefork import proc, selfcmd
from treefork.config import Config
from treefork.errors import FatalError

RUNNING, EXITED, NONE, NO_TMUX = "running", "exited", "none", "no-tmux"


OWNER_OPTION = "@treefork-worktree"


def session_name(repo_id: str | None, repo_name: str, workspace: str) -> str:
    safe = re.sub(r"[.:]", "_", workspace)
    if safe != workspace:
        safe += "-" + hashlib.sha256(workspace.encode()).hexdigest()[:6]
    return re.sub(r"[.:]", "_", f"{repo_name}-{(repo_id or 'x')[:8]}") + "/" + safe


def tmux_path() -> str | None:
    return shutil.which("tmux")


def agent_command(config: Config, agent: str, prompt: str | None) -> tuple[str, ...]:
    command = config.agents.get(agent) or tuple(shlex.split(agent))
    if not command:
        raise FatalError("empty --agent command", hint="e.g. --agent claude, or a profile from [agents]")
    return (*command, prompt) if prompt else command


def launch(session: str, worktree: Path, workspace: str, command: tuple[str, ...]) -> None:
    """Start command in a new detached tmux session, or raise FatalError saying why not. The session runs
    `treefork run WORKSPACE -- command`, so the agent gets the env file even from a tmux server started
    elsewhere, and no secret goes on a command line."""
    tmux = tmux_path()
    if tmux is None:
        raise FatalError(
            "tmux is not installed, so the agent was not started (the workspace is ready)",
            hint=f"install tmux (apt-get install tmux, brew install tmux), or run it yourself: cd {worktree} && {shlex.join(command)}",
        )
    if status(session) in (RUNNING, EXITED):
        raise FatalError(
            f"tmux session {session} already exists", hint=f"treefork attach, or tmux kill-session -t ={session}"
        )
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    # tmux splits commands at an argument ending in ';' unless it is written '\\;'
    wrapped = tuple(a[:-1] + "\\;" if a.endswith(";") else a for a in selfcmd.argv("run", workspace, "--", *command))
    # one tmux invocation, so the pane stays (remain-on-exit) even for an agent that exits at once
    keep = (";", "set-option", "-w", "-t", f"={session}:", "remain-on-exit", "on")
    owned = (";", "set-option", "-t", f"={session}:", OWNER_OPTION, str(worktree))
    proc.run(tmux, "new-session", "-d", "-s", session, "-c", str(worktree), *wrapped, *keep, *owned, env=env)


def status(session: str) -> str:
    """One session's state: RUNNING, EXITED, NONE, or NO_TMUX."""
    return status_in(statuses(), session)


def statuses() -> dict[str, str] | None:
    """Every tmux session's state (RUNNING or EXITED) from one `tmux list-panes -a`, for `ls`, which asked
    tmux once a workspace before; {} without a process when no server runs; None when tmux is not installed.
    A session absent from the dict has none (NONE)."""
    tmux = tmux_path()
    if tmux is None:
        return None
    if not server_may_run():
        return {}
    r = proc.run(tmux, "list-panes", "-a", "-F", "#{pane_dead} #{session_name}", check=False)
    flags: dict[str, list[str]] = {}
    for line in r.out.splitlines() if r.rc == 0 else []:
        dead, _, session = line.partition(" ")
        flags.setdefault(session, []).append(dead)
    return {session: _state(dead) for session, dead in flags.items()}


def status_in(sessions: dict[str, str] | None, session: str) -> str:
    """A session's state, looked up in what statuses() returned."""
    return NO_TMUX if sessions is None else sessions.get(session, NONE)


def _state(pane_dead: list[str]) -> str:
    """A session whose every pane is dead (remain-on-exit kept it) has an agent that exited."""
    return EXITED if all(flag == "1" for flag in pane_dead) else RUNNING


def server_may_run() -> bool:
    """Whether a tmux server may listen where a tmux client started by this process would connect
    (tmux.c: main, make_label): inside tmux the socket $TMUX names, else <dir>/tmux-<uid>/default, dir being
    $TMUX_TMPDIR when it exists (tmux 3 resolves it and falls back to /tmp). No socket, no server: asking
    tmux would only start a process to hear "no server running"."""
    inside = os.environ.get("TMUX", "")
    if inside and not inside.startswith(","):
        return os.path.exists(inside.split(",", 1)[0])
    tmpdir = os.environ.get("TMUX_TMPDIR") or ""
    base = os.path.realpath(tmpdir) if tmpdir and os.path.exists(tmpdir) else "/tmp"
    return os.path.exists(os.path.join(base, f"tmux-{os.getuid()}", "default"))


def attach(session: str) -> int:
    tmux = tmux_path()
    if tmux is None:
        raise FatalError("tmux is not installed", hint="install tmux (apt-get install tmux)")
    if status(session) == NONE:
        raise FatalError(f"no agent session {session}", hint="start one with `treefork new NAME --agent CMD`")
    verb = "switch-client" if os.environ.get("TMUX") else "attach-session"
    return proc.run_attached(tmux, verb, "-t", f"={session}", cwd=os.getcwd(), env=dict(os.environ))


def kill(session: str, worktree: Path) -> None:
    """Kill the session treefork started for this worktree; one of the same name that is not (it carries no
    or another worktree) is left alone."""
    tmux = tmux_path()
    if tmux is None or not server_may_run():
        return
    r = proc.run(tmux, "show-options", "-t", f"={session}:", "-v", OWNER_OPTION, check=False)
    if r.rc == 0 and r.out.strip() == str(worktree):
        proc.run(tmux, "kill-session", "-t", f"={session}", check=False)
