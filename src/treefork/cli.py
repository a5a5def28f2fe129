"""Parse arguments and call commands/*. Nothing else happens here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import click

from treefork import __version__, output
from treefork.completion import workspace_names
from treefork.error_handler import error_handler
from treefork.errors import FatalError

POSTGRES_HELP = (
    "The PostgreSQL the clusters run on: `embedded` (the wheel's 18), a major (`15`) or a bin directory "
    "(default: treefork.toml's `postgres`, else the one matching the imported dev database, else embedded)."
)
JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output with stable field names.")

# `treefork --help` lists the commands in these groups, each with its whole first sentence
SECTIONS = {
    "Workspaces": ("new", "ls", "url", "run", "attach", "rm"),
    "When an agent's work is done": ("diff", "merge", "reset"),
    "Set-up and upkeep": ("init", "install", "uninstall", "sync", "doctor", "gc", "server", "demo"),
}


def summary(command: click.Command) -> str:
    """A command's first sentence, whole (click's own short help cuts it at 45 characters)."""
    return command.get_short_help_str(limit=1_000)


class Group(click.Group):
    """A group whose help lists each command with its whole first sentence, in SECTIONS for the top level."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ours = SECTIONS if self.name == "cli" else {}
        listed = {name for names in ours.values() for name in names}
        sections = {**ours, "Other" if ours else "Commands": tuple(sorted(set(self.commands) - listed))}
        for title, names in sections.items():
            rows = [(n, summary(self.commands[n])) for n in names if n in self.commands and not self.commands[n].hidden]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="treefork")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A git worktree plus its own copy-on-write database branch, for each of your parallel AI agents."""
    if ctx.invoked_subcommand is None:  # `treefork` alone: the help, and success
        output.result(ctx.get_help())


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
    help="Copy this database into the root (default: the main worktree's DATABASE_URL, if it has one).",
)
@click.option(
    "--no-import",
    is_flag=True,
    help="Start the root empty and leave the main worktree's DATABASE_URL as it is.",
)
@click.option(
    "--overwrite-env", is_flag=True, help="Point the main worktree's DATABASE_URL at the root even if it has one."
)
@click.option("--postgres", metavar="CHOICE", help=POSTGRES_HELP)
@click.option("--project-id", help="Neon: the project to branch in.")
@JSON
def init(
    backend: str,
    server_url: str | None,
    import_url: str | None,
    no_import: bool,
    overwrite_env: bool,
    postgres: str | None,
    project_id: str | None,
    as_json: bool,
) -> None:
    """Choose the backend and create the root database branch (once per repository).

    If the main worktree's env file already has a DATABASE_URL, its data is copied into the root and the
    main worktree is pointed at the root (the old URL is kept in .git/treefork/previous.env); --no-import
    does neither."""
    from treefork.commands import init as cmd

    _exit(
        cmd.run(
            backend=backend,
            server_url=server_url,
            import_url=import_url,
            no_import=no_import,
            overwrite_env=overwrite_env,
            backend_options={"project_id": project_id, "postgres": postgres},
            as_json=as_json,
        )
    )


@cli.command()
@click.argument("name")
@click.option(
    "--from",
    "parent",
    metavar="WORKSPACE",
    shell_complete=workspace_names,
    help="Fork code and data from this workspace (default: the one this runs in, else the root; `root` for the root).",
)
@click.option("--branch", help="Git branch to use or create (default: NAME).")
@click.option(
    "--base",
    metavar="REF",
    help="Start a new branch at REF instead of the parent's HEAD (the database still forks from the parent's "
    "current data: treefork warns when that data is ahead of REF's code).",
)
@click.option("--path", help="Where to put the worktree (default: ../<repo>.worktrees/NAME).")
@click.option(
    "--terminate-blockers",
    is_flag=True,
    help="--server-url only: disconnect the parent database's clients for a TEMPLATE clone instead of copying it "
    "logically (the embedded backend forks online and never disconnects anyone).",
)
@click.option("--ttl", help="Neon: expire the branch after this long (e.g. 7d; at most 30d).")
@click.option("--agent", metavar="CMD", help="Start this agent (a command line or an [agents] profile) in tmux.")
@click.option("--prompt", metavar="TEXT", help="With --agent: pass TEXT to the agent as its last argument.")
@JSON
def new(
    name: str,
    parent: str | None,
    branch: str | None,
    base: str | None,
    path: str | None,
    terminate_blockers: bool,
    ttl: str | None,
    agent: str | None,
    prompt: str | None,
    as_json: bool,
) -> None:
    """Create (or finish creating) workspace NAME: worktree, branch, database branch and env file."""
    from treefork.commands import new as cmd

    _exit(
        cmd.run(
            name,
            parent=parent,
            branch=branch,
            base=base,
            path=path,
            terminate_blockers=terminate_blockers,
            ttl=ttl,
            as_json=as_json,
            agent=agent,
            prompt=prompt,
        )
    )


@cli.command(name="ls")
@click.argument("name", required=False)
@JSON
def ls_(name: str | None, as_json: bool) -> None:
    """List the workspaces of this repository; with NAME, everything about that one."""
    from treefork.commands import ls as cmd

    _exit(cmd.run(name, as_json=as_json))


@cli.command()
@click.argument("name", required=False, shell_complete=workspace_names)
@click.option("--direct", is_flag=True, help="The unpooled URL (Neon); the same URL for local.")
@JSON
def url(name: str | None, direct: bool, as_json: bool) -> None:
    """Print a workspace's DATABASE_URL (default: the current worktree's)."""
    from treefork.commands import url as cmd

    _exit(cmd.run(name, direct=direct, as_json=as_json))


@cli.command()
@click.argument("names", nargs=-1, required=True, shell_complete=workspace_names)
@click.option("--force", is_flag=True, help="Remove even with uncommitted changes (they are lost).")
@click.option(
    "--delete-branch", is_flag=True, help="Delete the git branch even if it is not merged (only one treefork created)."
)
@JSON
def rm(names: tuple[str, ...], force: bool, delete_branch: bool, as_json: bool) -> None:
    """Remove workspaces: drop the database branch, remove the worktree, delete the branch if merged.

    Every NAME is checked before any is removed. A branch treefork did not create is never deleted.
    NAME `.` is the workspace of the worktree you are in."""
    from treefork.commands import rm as cmd

    _exit(cmd.run(names, force=force, delete_branch=delete_branch, as_json=as_json))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be dropped.")
@JSON
def gc(dry_run: bool, as_json: bool) -> None:
    """Drop database branches whose worktree is gone (and those a crash left behind)."""
    from treefork.commands import gc as cmd

    _exit(cmd.run(dry_run=dry_run, as_json=as_json))


@cli.group(cls=Group, invoke_without_command=True)
@JSON
@click.pass_context
def server(ctx: click.Context, as_json: bool) -> None:
    """Show, start or stop every embedded PostgreSQL cluster (one per workspace and root) on this machine.

    After a reboot, `treefork server start` starts them all (any treefork command also starts the ones it
    needs); `treefork server autostart` writes a systemd user unit that does it at login."""
    if ctx.invoked_subcommand is None:  # `treefork server` alone: the status
        from treefork.commands import server as cmd

        _exit(cmd.run("status", as_json=as_json))


def _server_action(action: str, summary_line: str) -> None:
    @JSON
    def command(as_json: bool) -> None:
        from treefork.commands import server as cmd

        _exit(cmd.run(action, as_json=as_json))

    server.command(name=action, help=summary_line)(command)


_server_action("status", "Every cluster: its workspace, port, state and pid.")
_server_action("start", "Start every cluster of a repository that still exists (after a reboot).")
_server_action("stop", "Stop every cluster; each starts again on the next command that needs it.")


@server.command(name="prune")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option(
    "--force", is_flag=True, help="Also remove clusters an older treefork made, whose repository is not recorded."
)
@JSON
def server_prune(dry_run: bool, force: bool, as_json: bool) -> None:
    """Remove the clusters of repositories that are gone or were initialised again (their data goes)."""
    from treefork.commands import server as cmd

    _exit(cmd.prune(dry_run=dry_run, force=force, as_json=as_json))


@server.command()
@click.option("--force", is_flag=True, help="Write the unit even where systemd does not seem to run.")
@JSON
def autostart(force: bool, as_json: bool) -> None:
    """Write a systemd user unit that runs `treefork server start` at login."""
    from treefork.commands import server as cmd

    _exit(cmd.run("autostart", as_json=as_json, force=force))


@cli.command()
@click.option("--workspaces", default=3, show_default=True, help="How many agents' workspaces to create, in parallel.")
@click.option("--keep", is_flag=True, help="Keep the demo repository instead of cleaning up.")
@JSON
def demo(workspaces: int, keep: bool, as_json: bool) -> None:
    """The story in seconds: agents' workspaces forked from a busy main, their own migrations, diff, merge."""
    from treefork.commands import demo as cmd

    _exit(cmd.run(count=workspaces, keep=keep, as_json=as_json))


AGENTS = ("claude", "codex", "gemini", "opencode", "qwen", "kilo", "droid", "cursor", "conductor")


def _agents_command(verb: str, *, every: str, every_help: str) -> Callable[[Callable[..., None]], click.Command]:
    """`install` and `uninstall`: a flag an agent (`--claude`, ...), `--agents` for all of them (as `every`) and
    `--json`."""

    def decorate(f: Callable[..., None]) -> click.Command:
        f = click.option("--agents", every, is_flag=True, help=every_help)(JSON(f))
        for agent in reversed(AGENTS):
            f = click.option(f"--{agent}", f"agent_{agent}", is_flag=True, help=f"{verb} the {agent} integration.")(f)
        return cli.command()(f)

    return decorate


def _picked(flags: dict[str, bool]) -> tuple[str, ...]:
    return tuple(a for a in AGENTS if flags.get(f"agent_{a}"))


@_agents_command("Also install", every="detect", every_help="Also install every agent found on PATH or in the project.")
def install(detect: bool, as_json: bool, **flags: bool) -> None:
    """Install the git hooks that provision every new worktree, and the chosen agents' hooks (docs/agents.md)."""
    from treefork.commands import install as cmd

    _exit(cmd.run(agents=_picked(flags), detect=detect, as_json=as_json))


@_agents_command("Also remove", every="every", every_help="Also remove every agent integration.")
def uninstall(every: bool, as_json: bool, **flags: bool) -> None:
    """Remove treefork's git hooks (restoring any hook they had chained) and the chosen agents' hooks."""
    from treefork.commands import uninstall as cmd

    _exit(cmd.run(agents=_picked(flags), every=every, as_json=as_json))


@cli.command(name="claude-hook", hidden=True)
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
@click.argument("name", required=False, shell_complete=workspace_names)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (for agent session-start hooks).")
@JSON
def sync(name: str | None, quiet: bool, as_json: bool) -> None:
    """Make sure this worktree (or NAME) is provisioned, and treefork.toml's extensions made in every workspace:
    idempotent, a fast no-op when it already is."""
    from treefork.commands import sync as cmd

    _exit(cmd.run(name, quiet=quiet, as_json=as_json))


@cli.command()
@click.option(
    "--fix", is_flag=True, help="Carry out treefork's own fixes (start, gc, sync, install), then check again."
)
@JSON
def doctor(fix: bool, as_json: bool) -> None:
    """Check hooks, agents' settings, the backend and the registry against git; change nothing without --fix."""
    from treefork.commands import doctor as cmd

    _exit(cmd.run(fix=fix, as_json=as_json))


@cli.command()
@click.argument("name")
@click.option("--keep", "keep", is_flag=True, help="Keep the workspace after merging.")
@click.option("--no-rm", "keep", is_flag=True, hidden=True)  # the old spelling of --keep
@click.option("--abort", "abort", is_flag=True, help="Undo an interrupted merge of NAME (code and database back).")
@JSON
def merge(name: str, keep: bool, abort: bool, as_json: bool) -> None:
    """Merge workspace NAME into its parent's branch, run `migrate` on a fork of the parent's database, then
    on the parent's own, remove NAME.

    All or nothing: a conflict, a dirty parent worktree, a failing migration, ^C, SIGTERM or SIGHUP leaves
    code and data as they were. After a crash, `treefork merge NAME` finishes the interrupted merge (or
    undoes it and merges again); `--abort` undoes it."""
    from treefork.commands import merge as cmd

    _exit(cmd.run(name, keep=keep, abort=abort, as_json=as_json))


@cli.command()
@click.argument("name")
@click.option("--from", "source", metavar="WORKSPACE", help="Reset from this workspace instead of the parent.")
@JSON
def reset(name: str, source: str | None, as_json: bool) -> None:
    """Put NAME's database back to its parent's current state (URL and credentials unchanged)."""
    from treefork.commands import reset as cmd

    _exit(cmd.run(name, source=source, as_json=as_json))


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--all", "all_", is_flag=True, help="Every workspace: what each changed, and collisions (schema, migration files)."
)
@click.option("--against-parent", is_flag=True, help="Compare with the parent's current schema, not NAME's fork point.")
@JSON
def diff(name: str | None, all_: bool, against_parent: bool, as_json: bool) -> None:
    """What NAME changed in its schema since it was forked. Exit 0: nothing; 4: a change (or, with --all, a collision)."""
    from treefork.commands import diff as cmd

    _exit(cmd.run(name, all_=all_, against_parent=against_parent, as_json=as_json))


@cli.command()
@click.argument("name")
def attach(name: str) -> None:
    """Attach to the tmux session of NAME's agent (started by `new NAME --agent CMD`)."""
    from treefork.commands import attach as cmd

    _exit(cmd.run(name))


@cli.command(name="run", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_(name: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in NAME's worktree with its env file loaded: treefork run NAME -- CMD [ARGS...]."""
    from treefork.commands import run as cmd

    _exit(cmd.run(name, command))


def _exit(code: int) -> None:
    if code:
        raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    """Run treefork with these arguments (default: the command line's) and return its exit code."""
    from treefork import output

    output.begin()
    try:
        with error_handler():
            _run(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    return 0


def console_main() -> NoReturn:
    """The `treefork` console script and `python -m treefork`."""
    _leave(main())


def _leave(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, which spends 10-20 ms freeing modules one by one. By now
    every file treefork wrote is closed (atomic writes), every thread joined and every child reaped."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`treefork ls | head`): nothing more can be said
            pass
    os._exit(code)


def _run(argv: list[str] | None) -> None:
    _expect_working_directory()
    try:
        cli.main(argv, prog_name="treefork", standalone_mode=False)
    except click.exceptions.Abort as e:  # click's word for ^C; SIGTERM and SIGHUP keep their own (interrupts.py)
        raise (e.__cause__ if isinstance(e.__cause__, KeyboardInterrupt) else KeyboardInterrupt()) from None
    except click.ClickException as e:  # usage errors: one line with the fix, like every other error
        ctx = getattr(e, "ctx", None)  # usage errors know their command
        where = f"{ctx.command_path} --help" if ctx else "treefork --help"
        output.error(f"{e.format_message()} (hint: see `{where}`)")
        raise SystemExit(e.exit_code) from None


def _expect_working_directory() -> None:
    """A shell left in a removed worktree (`treefork rm` or `git worktree remove` from inside it)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise FatalError(
            "the current directory no longer exists (its worktree was removed)",
            hint="cd into the repository's main worktree",
        ) from None
