"""`treefork init`: choose the backend and create the root database branch.

The usual case is a project that already has a dev database: on the local backend its data is copied into
the root and the main worktree is pointed at the root, so every workspace forks real data. A failed init
leaves nothing behind: the registry is written only once the root exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from treefork import envfile, git, output, paths
from treefork.backends import BACKENDS, open_backend
from treefork.backends.base import Backend, BackendContext, DbBranch
from treefork.context import Context
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.redact import register
from treefork.state import new_repo_id
from treefork.workspace import envbuild


@dataclass(frozen=True)
class Source:
    url: str | None  # the database to copy into the root, if any
    from_main_env: bool  # it is the main worktree's own DATABASE_URL


def run(
    *,
    backend: str,
    server_url: str | None,
    import_url: str | None,
    no_import: bool,
    overwrite_env: bool,
    backend_options: dict[str, Any],
    as_json: bool,
) -> int:
    git.check_version()
    ctx = Context.open()
    _check_options(backend, server_url, import_url, no_import=no_import)
    register(server_url)
    state = ctx.state()
    if state.initialized:
        return _already(ctx, backend, import_url, overwrite_env=overwrite_env, as_json=as_json)
    source = _source(ctx, backend, server_url, import_url, no_import=no_import)
    repo_id = state.repo_id or new_repo_id()
    settings = _settings(backend, server_url, source, backend_options)
    if server_url:
        ctx.registry.set_secret("admin_url", server_url)
    be = open_backend(backend, _backend_context(ctx, repo_id, settings))
    try:
        root = be.create_root(import_url=source.url)
    except BaseException:
        if server_url:
            ctx.registry.forget_secret("admin_url")
        raise
    _record(ctx, repo_id, backend, settings, root)
    env_note = _main_env(ctx, be, root, source, overwrite=overwrite_env)
    _report(backend, root, source, env_note, repo_id, as_json=as_json)
    return 0


def _check_options(backend: str, server_url: str | None, import_url: str | None, *, no_import: bool) -> None:
    if backend not in BACKENDS:
        raise FatalError(f"unknown backend {backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    if server_url and backend != "local":
        raise FatalError(
            "--server-url only applies to the local backend", hint="drop --server-url, or use --backend local"
        )
    if no_import and import_url is not None:
        raise FatalError("--import and --no-import contradict each other", hint="pass one of them")


def _already(ctx: Context, backend: str, import_url: str | None, *, overwrite_env: bool, as_json: bool) -> int:
    """init on an initialised repo: idempotent, but never claims an import it did not do."""
    state = ctx.state()
    if state.backend != backend:
        raise FatalError(
            f"this repository already uses the {state.backend} backend",
            hint="remove every workspace (`treefork rm`), then move .git/treefork aside to start over",
        )
    if import_url is not None:
        raise FatalError(
            "treefork is already initialised here, so --import would not run: the root already exists",
            hint="to bring that data into a workspace, restore it into the workspace's DATABASE_URL yourself",
        )
    be = ctx.backend(state)
    be.ensure_ready()
    root = be.root()
    note = _main_env(ctx, be, root, Source(None, from_main_env=False), overwrite=True) if overwrite_env else None
    if as_json:
        output.emit_json({"backend": state.backend, "root_db_branch": root.name, "repo_id": state.repo_id, "env": note})
    else:
        output.info(f"treefork is already initialised: backend {state.backend}, root database {root.name}")
        if note:
            output.info(note)
    return 0


def _source(ctx: Context, backend: str, server_url: str | None, import_url: str | None, *, no_import: bool) -> Source:
    """What to copy into the root: --import URL; else, on the embedded local backend, the main worktree's
    existing DATABASE_URL; else nothing."""
    if no_import:
        return Source(None, from_main_env=False)
    current = _main_url(ctx)
    if import_url == "":  # --import with no URL
        if not current:
            raise FatalError(
                f"--import needs a URL: {ctx.config.env_file} has no {ctx.config.url_var}",
                hint="treefork init --import postgresql://user:pass@host/db",
            )
        return Source(current, from_main_env=True)
    if import_url:
        register(import_url)
        return Source(import_url, from_main_env=import_url == current)
    if backend == "local" and not server_url and current and _is_postgres(current):
        return Source(current, from_main_env=True)
    return Source(None, from_main_env=False)


def _main_url(ctx: Context) -> str | None:
    env = envbuild.load_env(ctx.repo.main_root / ctx.config.env_file)
    url = env.get(ctx.config.url_var)
    register(url)
    return url or None


def _is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


def _settings(backend: str, server_url: str | None, source: Source, options: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if backend == "local" and server_url:
        settings["external"] = True
    elif backend == "local":
        settings["layout"] = "clusters"
        settings["home"] = str(paths.treefork_home())
        settings["dbname"] = _dbname(source.url)
    return settings


def _dbname(url: str | None) -> str:
    """The root's database name: the imported database's own (an app that hard-codes it still works)."""
    name = unquote(urlsplit(url).path.lstrip("/")) if url else ""
    ok = name and "\0" not in name and len(name.encode()) < 64 and name not in ("postgres", "template0", "template1")
    return name if ok else "app"


def _backend_context(ctx: Context, repo_id: str, settings: dict[str, Any]) -> BackendContext:
    return BackendContext(
        repo_id=repo_id,
        repo_name=ctx.repo.name,
        main_root=ctx.repo.main_root,
        config=ctx.config,
        registry=ctx.registry,
        settings=settings,
        progress=output.info,
    )


def _record(ctx: Context, repo_id: str, backend: str, settings: dict[str, Any], root: DbBranch) -> None:
    with ctx.registry.transaction() as st:
        st.repo_id, st.backend = repo_id, backend
        st.backend_settings = {**settings, **st.backend_settings}
        st.root_db_branch, st.root_db_id, st.root_clone_method = root.name, root.id, root.clone_method


def _main_env(ctx: Context, be: Backend, root: DbBranch, source: Source, *, overwrite: bool) -> str:
    """Point the main worktree at the root when its data went there (or it had no URL, or --overwrite-env);
    its old URL is kept, 0600, in .git/treefork/previous.env."""
    path = ctx.repo.main_root / ctx.config.env_file
    exists = path.exists()
    # No env file yet: start it from the example, as worktrees do.
    text = envfile.read(path) if exists else envbuild.template_text(ctx.repo, ctx.config)
    current = envfile.values(text).get(ctx.config.url_var) if exists else None
    name = ctx.config.env_file
    if current and not (overwrite or source.from_main_env):
        return f"{name} keeps its own {ctx.config.url_var} (`treefork init --overwrite-env` points it at the root)"
    if current:
        previous = ctx.registry.dir / "previous.env"
        atomic_write_text(previous, f"{ctx.config.url_var}={current}\n", mode=0o600)
    envfile.write(path, envfile.rewrite(text, {ctx.config.url_var: be.connection(root).url}))
    envbuild.exclude_from_git(ctx.repo, ctx.repo.main_root, ctx.config.env_file)
    kept = f"; the old one is kept in {ctx.registry.dir / 'previous.env'}" if current else ""
    return f"{name} {ctx.config.url_var} now points at the root{kept}"


def _report(backend: str, root: DbBranch, source: Source, env_note: str, repo_id: str, *, as_json: bool) -> None:
    from treefork.backends.local.importer import safe_url

    imported = safe_url(source.url) if source.url else None
    if as_json:
        output.emit_json(
            {
                "backend": backend,
                "root_db_branch": root.name,
                "root_clone_method": root.clone_method,
                "imported_from": imported,
                "repo_id": repo_id,
                "env": env_note,
            }
        )
        return
    what = f"with the data of {imported}" if imported else "empty"
    output.info(f"treefork ready: backend {backend}, root database {root.name}, {what}")
    hint = " (`treefork init --no-import` would have left it alone)" if source.from_main_env else ""
    output.info(f"{env_note}{hint}; next: treefork new <name>")
