"""`treefork sync [NAME] [--quiet]`: make sure a worktree is provisioned (default: this worktree).

Idempotent and cheap when there is nothing to do, so agents run it at every session start. A worktree git
made without treefork is adopted: named after its branch, or, when detached (Codex), after its directory
(docs/agents.md, "Names"). When provisioning fails, the worktree still gets an env file whose DATABASE_URL
fails loudly, and is recorded unprovisioned.
"""

from __future__ import annotations

from treefork import output
from treefork.context import Context
from treefork.errors import FatalError
from treefork.state import READY, State, Workspace
from treefork.workspace import adopt, create


def run(name: str | None, *, quiet: bool, as_json: bool) -> int:
    if quiet:
        output.be_quiet()
    ctx = Context.open()
    state = ctx.state()
    if quiet and not state.initialized:
        return 0  # an agent's session hook in a repository that does not use treefork
    state.expect_initialized()
    made = _admin_extensions(ctx, state, quiet=quiet) if ctx.config.extensions else False
    ws = state.expect_workspace(name) if name else state.workspace_by_path_or_none(ctx.repo.toplevel)
    if ws is not None and ws.status == READY and _env_present(ctx, ws.path) and not as_json:
        if not quiet:
            _expect_answering(ctx, ws)  # a person asked: "ready" is said only of a database that answers
            output.info(f"workspace {ws.name} is ready: database {ws.db_branch}, parent {ws.parent or 'root'}")
        return 0  # the fast path (agents' --quiet): one registry read, one stat
    if ws is None and not ctx.repo.is_linked_worktree:
        if quiet or ctx.config.extensions or made:
            return 0  # the root's part, its extensions, is done
        raise FatalError(
            "the main worktree is the root workspace; there is nothing to sync",
            hint="run `treefork sync` inside a linked worktree, or `treefork sync NAME`",
        )
    from treefork.hooks import git_hooks

    moved = git_hooks.bypassed(ctx.repo)  # the git hooks did not provision this worktree: say why, if it is that
    if moved:
        output.warn(f"{moved}; fix: {git_hooks.BYPASS_HINT}")
    if ws is not None:
        ws = create.create(ctx, adopt.resume_request(ws))
    else:
        root = ctx.repo.toplevel
        ws = adopt.provision(ctx, adopt.request_for(ctx, root, branch=ctx.repo.current_branch(root), origin="sync"))
    if as_json:
        from treefork.workspace import views

        output.emit_json(views.workspace_json(ctx, ws.name))
    elif not quiet:
        output.info(
            f"workspace {ws.name} is {ws.status}: database {ws.db_branch} ({ws.clone_method}), "
            f"parent {ws.parent or 'root'}"
        )
    return 0


def _admin_extensions(ctx: Context, state: State, *, quiet: bool) -> bool:
    """treefork.toml's extensions, made by the admin where a cluster lacks them
    (the local backend: backends/local/admin_extensions.py). Nothing is read but the registry unless treefork.toml
    lists one not yet recorded made everywhere; on a server the user runs (`--server-url`, Neon) the extensions are
    the server's. Returns whether anything was made."""
    from treefork import backends

    names = ctx.config.extensions
    pending = backends.extensions_pending(state.backend or "", state.backend_settings, names)
    if not pending:
        if pending is False and not quiet:
            output.info(f"extensions {', '.join(names)}: in the root and every workspace")
        return False
    outcome = ctx.backend(state).make_extensions()
    for line in outcome.made:
        output.info(line)
    for line in outcome.failed:
        output.warn(f"treefork.toml's extensions not made in {line}; then `treefork sync` again")
    if names and not quiet and not outcome.failed:
        output.info(f"extensions {', '.join(names)}: in the root and every workspace")
    return bool(outcome.made)


def _expect_answering(ctx: Context, ws: Workspace) -> None:
    """The workspace's database is up (the backend starts it, and says when its port is someone else's) and its
    env file's URL logs in: a dropped database or a changed password is not "ready"."""
    from treefork import dbsettings
    from treefork.backends.local import libpq  # the one seam to PostgreSQL; it speaks to any server
    from treefork.workspace import envbuild

    db = ws.db_ref_or_none()
    assert db is not None
    ctx.backend().connection(db)
    url = envbuild.load_env(ctx.config.env_path(ws.path)).get(ctx.config.url_var)
    try:
        libpq.connect_url(dbsettings.libpq_url(url or ""), connect_timeout=5).close()
    except FatalError as e:
        raise FatalError(
            f"workspace {ws.name} is recorded ready, but its env file's {ctx.config.url_var} does not log in: {e.message}",
            hint=f"`treefork reset {ws.name}` makes its database again from its parent (its own data is lost)",
        ) from None


def _env_present(ctx: Context, path: str) -> bool:
    return ctx.config.env_path(path).is_file()
