"""`treefork attach NAME`: the agent's tmux session; and starting that agent for `new --agent`."""

from __future__ import annotations

from pathlib import Path

from treefork import output
from treefork.agents import tmux
from treefork.context import Context
from treefork.errors import FatalError
from treefork.state import Workspace


def run(name: str) -> int:
    ctx = Context.open()
    state = ctx.state()
    state.expect_workspace(name)
    return tmux.attach(tmux.session_name(state.repo_id, ctx.repo.name, name))


def start_agent(ctx: Context, ws: Workspace, agent: str, prompt: str | None) -> None:
    """Start the agent; without tmux, say so and leave the (ready) workspace as it is."""
    command = tmux.agent_command(ctx.config, agent, prompt)
    session = tmux.session_name(ctx.state().repo_id, ctx.repo.name, ws.name)
    try:
        tmux.launch(session, Path(ws.path), ws.name, command)
    except FatalError as e:
        output.warn(str(e))
        return
    output.info(f"agent started in tmux session {session}: treefork attach {ws.name}")
