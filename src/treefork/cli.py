"""Parse arguments and call commands/*. Nothing else happens here."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from treefork import __version__
from treefork.error_handler import error_handler

JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output with stable field names.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="treefork")
def cli() -> None:
    """A git worktree plus its own copy-on-write database branch, for each of your parallel AI agents."""


@cli.command()
@click.option("--backend", default="local", show_default=True, help="local (embedded PostgreSQL 18) or neon.")
@click.option(
    "--server-url", help="Branch on a PostgreSQL server you already run (an admin URL) instead of the embedded one."
)
@click.option(
    "--import",
    "import_url",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[URL]",
    help="Copy an existing database into the root once (default URL: the main worktree's DATABASE_URL).",
)
@click.option(
    "--overwrite-env", is_flag=True, help="Point the main worktree's DATABASE_URL at the root even if it has one."
)
@click.option("--project-id", help="Neon: the project to branch in.")
@JSON
def init(
    backend: str,
    server_url: str | None,
    import_url: str | None,
    overwrite_env: bool,
    project_id: str | None,
    as_json: bool,
) -> None:
    """Choose the backend and create the root database branch (once per repository)."""
    from treefork.commands import init as cmd

    _exit(
        cmd.run(
            backend=backend,
            server_url=server_url,
            import_url=import_url,
            overwrite_env=overwrite_env,
            backend_options={"project_id": project_id},
            as_json=as_json,
        )
    )


@cli.command()
@click.argument("name")
@click.option(
    "--from",
    "parent",
    metavar="WORKSPACE",
    help="Fork code and data from this workspace (default: the one this runs in, else the root; `root` for the root).",
)
@click.option("--branch", help="Git branch to use or create (default: NAME).")
@click.option("--path", help="Where to put the worktree (default: ../<repo>.worktrees/NAME).")
@click.option(
    "--terminate-blockers",
    is_flag=True,
    help="Disconnect clients of the parent database for the clone (they are named otherwise).",
)
@click.option("--ttl", help="Neon: expire the branch after this long (e.g. 7d; at most 30d).")
@JSON
def new(
    name: str,
    parent: str | None,
    branch: str | None,
    path: str | None,
    terminate_blockers: bool,
    ttl: str | None,
    as_json: bool,
) -> None:
    """Create (or finish creating) workspace NAME: worktree, branch, database branch and env file."""
    from treefork.commands import new as cmd

    _exit(
        cmd.run(
            name,
            parent=parent,
            branch=branch,
            path=path,
            terminate_blockers=terminate_blockers,
            ttl=ttl,
            as_json=as_json,
        )
    )


@cli.command(name="ls")
@JSON
def ls_(as_json: bool) -> None:
    """List the workspaces of this repository."""
    from treefork.commands import ls as cmd

    _exit(cmd.run(as_json=as_json))


@cli.command()
@click.argument("name", required=False)
@click.option("--direct", is_flag=True, help="The unpooled URL (Neon); the same URL for local.")
@JSON
def url(name: str | None, direct: bool, as_json: bool) -> None:
    """Print a workspace's DATABASE_URL (default: the current worktree's)."""
    from treefork.commands import url as cmd

    _exit(cmd.run(name, direct=direct, as_json=as_json))


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Remove even with uncommitted changes (they are lost).")
@click.option("--delete-branch", is_flag=True, help="Delete the git branch even if it is not merged.")
@JSON
def rm(names: tuple[str, ...], force: bool, delete_branch: bool, as_json: bool) -> None:
    """Remove workspaces: drop the database branch, remove the worktree, delete the branch if merged."""
    from treefork.commands import rm as cmd

    _exit(cmd.run(names, force=force, delete_branch=delete_branch, as_json=as_json))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be dropped.")
@JSON
def gc(dry_run: bool, as_json: bool) -> None:
    """Drop database branches whose worktree is gone (and those a crash left behind)."""
    from treefork.commands import gc as cmd

    _exit(cmd.run(dry_run=dry_run, as_json=as_json))


@cli.command()
@click.argument("action", type=click.Choice(["status", "start", "stop"]), default="status")
@JSON
def server(action: str, as_json: bool) -> None:
    """Show, start or stop the embedded PostgreSQL server."""
    from treefork.commands import server as cmd

    _exit(cmd.run(action, as_json=as_json))


@cli.command()
@click.option("--workspaces", default=3, show_default=True, help="How many parallel workspaces to create.")
@click.option("--keep", is_flag=True, help="Keep the demo repository instead of cleaning up.")
@JSON
def demo(workspaces: int, keep: bool, as_json: bool) -> None:
    """A throwaway repo with parallel workspaces that prove isolation, then clean up."""
    from treefork.commands import demo as cmd

    _exit(cmd.run(count=workspaces, keep=keep, as_json=as_json))


AGENTS = ("claude", "codex", "gemini", "opencode")


def _agent_flags(verb: str):
    def decorate(f):
        for agent in reversed(AGENTS):
            f = click.option(f"--{agent}", f"agent_{agent}", is_flag=True, help=f"{verb} the {agent} integration.")(f)
        return f

    return decorate


def _picked(flags: dict[str, bool]) -> tuple[str, ...]:
    return tuple(a for a in AGENTS if flags.get(f"agent_{a}"))


@cli.command()
@_agent_flags("Also install")
@click.option("--agents", "detect", is_flag=True, help="Also install every agent found on PATH or in the project.")
@JSON
def install(detect: bool, as_json: bool, **flags: bool) -> None:
    """Install the git hooks that provision every new worktree, and the chosen agents' hooks (docs/agents.md)."""
    from treefork.commands import install as cmd

    _exit(cmd.run(agents=_picked(flags), detect=detect, as_json=as_json))


@cli.command()
@_agent_flags("Also remove")
@click.option("--agents", "every", is_flag=True, help="Also remove every agent integration.")
@JSON
def uninstall(every: bool, as_json: bool, **flags: bool) -> None:
    """Remove treefork's git hooks (restoring any hook they had chained) and the chosen agents' hooks."""
    from treefork.commands import uninstall as cmd

    _exit(cmd.run(agents=_picked(flags), every=every, as_json=as_json))


@cli.command(name="claude-hook")
@click.argument("verb", type=click.Choice(["create", "remove"]))
def claude_hook(verb: str) -> None:
    """Claude Code WorktreeCreate/WorktreeRemove hook (reads the event JSON on stdin)."""
    from treefork.commands import claude_hook as cmd

    _exit(cmd.run(verb))


@cli.command(hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("hook_name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook(hook_name: str, args: tuple[str, ...]) -> None:
    """Entry point for the installed git hook scripts."""
    from treefork.commands import hook as cmd

    _exit(cmd.run(hook_name, args))


@cli.command()
@click.argument("name", required=False)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (for agent session-start hooks).")
@JSON
def sync(name: str | None, quiet: bool, as_json: bool) -> None:
    """Make sure this worktree (or NAME) is provisioned: idempotent, a fast no-op when it already is."""
    from treefork.commands import sync as cmd

    _exit(cmd.run(name, quiet=quiet, as_json=as_json))


@cli.command()
@JSON
def doctor(as_json: bool) -> None:
    """Check hooks, Claude Code settings, the backend, and that the registry agrees with git."""
    from treefork.commands import doctor as cmd

    _exit(cmd.run(as_json=as_json))


def _exit(code: int) -> None:
    if code:
        raise SystemExit(code)


def main() -> NoReturn:
    try:
        with error_handler():
            _run()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    _leave(code)


def _leave(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, which spends 10-20 ms freeing modules one by one. By now
    every file treefork wrote is closed (atomic writes), every thread joined and every child reaped."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`treefork ls | head`): nothing more can be said
            pass
    os._exit(code)


def _run() -> None:
    try:
        cli.main(prog_name="treefork", standalone_mode=False)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    except click.ClickException as e:  # usage errors: one line with the fix, like every other error
        from treefork import output

        where = f"{e.ctx.command_path} --help" if getattr(e, "ctx", None) else "treefork --help"
        output.error(f"{e.format_message()} (hint: see `{where}`)")
        raise SystemExit(e.exit_code) from None
