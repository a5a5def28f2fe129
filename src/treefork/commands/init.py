"""`treefork init`: choose the backend, create the root database branch."""

from __future__ import annotations

from typing import Any

from treefork import envbuild, envfile, git, output
from treefork.backends import BACKENDS, open_backend
from treefork.context import Context
from treefork.errors import FatalError
from treefork.redact import register
from treefork.state import new_repo_id


def run(
    *,
    backend: str,
    server_url: str | None,
    import_url: str | None,
    overwrite_env: bool,
    backend_options: dict[str, Any],
    as_json: bool,
) -> int:
    git.check_version()
    ctx = Context.open()
    if backend not in BACKENDS:
        raise FatalError(f"unknown backend {backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    if server_url and backend != "local":
        raise FatalError(
            "--server-url only applies to the local backend", hint="drop --server-url, or use --backend local"
        )
    register(server_url)
    import_url = _resolve_import(ctx, import_url)
    state = _record_backend(ctx, backend, server_url, backend_options)
    be = _backend_for_init(ctx)
    be.ensure_ready()
    root = be.create_root(import_url=import_url)
    with ctx.registry.transaction() as st:
        st.root_db_branch, st.root_db_id, st.root_clone_method = root.name, root.id, root.clone_method
        st.backend_settings["root_method"] = root.clone_method
    env_note = _main_env(ctx, be.connection(root).url, overwrite=overwrite_env)
    if as_json:
        output.emit_json(
            {
                "backend": backend,
                "root_db_branch": root.name,
                "root_clone_method": root.clone_method,
                "repo_id": state.repo_id,
                "env": env_note,
            }
        )
    else:
        output.info(f"treefork ready: backend {backend}, root database {root.name} ({root.clone_method}); {env_note}")
        output.info("next: treefork new <name>")
    return 0


def _resolve_import(ctx: Context, import_url: str | None) -> str | None:
    """`--import` with no URL means the main worktree's own DATABASE_URL."""
    if import_url != "":
        return import_url
    env = envbuild.load_env(ctx.repo.main_root / ctx.config.env_file)
    url = env.get(ctx.config.url_var)
    if not url:
        raise FatalError(
            f"--import needs a URL: {ctx.config.env_file} has no {ctx.config.url_var}",
            hint="treefork init --import postgresql://user:pass@host/db",
        )
    register(url)
    return url


def _record_backend(ctx: Context, backend: str, server_url: str | None, options: dict[str, Any]):
    with ctx.registry.transaction() as st:
        if st.backend and st.backend != backend:
            raise FatalError(
                f"this repository already uses the {st.backend} backend",
                hint="remove .git/treefork (after `treefork rm` of every workspace) to start over",
            )
        if st.repo_id is None:
            st.repo_id = new_repo_id()
        st.backend = backend
        settings = dict(st.backend_settings)
        if server_url:
            settings["external"] = True
        settings.update({k: v for k, v in options.items() if v is not None})
        st.backend_settings = settings
        snapshot = st
    if server_url:
        ctx.registry.set_secret("admin_url", server_url)
    return snapshot


def _backend_for_init(ctx: Context):
    state = ctx.state()
    assert state.backend and state.repo_id
    return open_backend(state.backend, ctx.backend_context(state))


def _main_env(ctx: Context, root_url: str, *, overwrite: bool) -> str:
    """The main worktree's env file gets the root's URL only if it has none (or with --overwrite-env)."""
    path = ctx.repo.main_root / ctx.config.env_file
    exists = path.exists()
    # No env file yet: start it from the example, as worktrees do, so it is not a one-line file that
    # every new worktree would then copy instead of the example (losing the example's other keys).
    text = envfile.read(path) if exists else envbuild.template_text(ctx.repo, ctx.config)
    current = envfile.values(text).get(ctx.config.url_var) if exists else None
    if current and not overwrite:
        return (
            f"{ctx.config.env_file} keeps its own {ctx.config.url_var} (pass --overwrite-env to point it at the root)"
        )
    envfile.write(path, envfile.rewrite(text, {ctx.config.url_var: root_url}))
    envbuild.exclude_from_git(ctx.repo, ctx.repo.main_root, ctx.config.env_file)
    return f"{ctx.config.env_file} {ctx.config.url_var} now points at the root"
