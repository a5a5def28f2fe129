"""`treefork init`: choose the backend and create the root database branch.

The usual case is a project that already has a dev database: on the local backend its data is copied into
the root and the main worktree is pointed at the root, so every workspace forks real data. A failed init
leaves nothing behind: the registry is written only once the root exists.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from treefork import backends, dbfamilies, dbsettings, envfile, git, output, shapes
from treefork.backends import BACKENDS, open_backend
from treefork.backends.base import Backend, BackendContext, Connection, DbBranch
from treefork.context import Context, backend_context
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.locks import FileLock
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
    if backend_options.get("postgres") is not None and not backends.runs_own_postgres(backend, server_url):
        raise FatalError(
            "--postgres applies to the local backend's own clusters only",
            hint="drop --postgres (a server you run, or Neon, has its own PostgreSQL)",
        )
    register(server_url)
    options = Options(backend, server_url, import_url, no_import, overwrite_env, backend_options, as_json)
    with _init_lock(ctx):  # two inits at once: one makes the root, the other finds it made
        return _init(ctx, options)


@dataclass(frozen=True)
class Options:
    """`init`'s command line, resolved once and passed down."""

    backend: str
    server_url: str | None
    import_url: str | None
    no_import: bool
    overwrite_env: bool
    backend_options: dict[str, Any]
    as_json: bool


@contextlib.contextmanager
def _init_lock(ctx: Context) -> Iterator[None]:
    """Held for the whole init. A failed first init leaves no `.git/treefork` behind for the lock's sake."""
    made = not ctx.registry.dir.exists()
    ctx.registry.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    lock = ctx.registry.dir / "init.lock"
    try:
        with FileLock(lock, timeout=3600, what="init").held():
            yield
    except BaseException:
        if made and {p.name for p in ctx.registry.dir.iterdir()} <= {lock.name}:
            shutil.rmtree(ctx.registry.dir, ignore_errors=True)
        raise


def _init(ctx: Context, o: Options) -> int:
    state = ctx.state()
    if state.initialized:
        _expect_same_postgres(state.backend_settings, o.backend_options)
        return _already(ctx, o.backend, o.import_url, overwrite_env=o.overwrite_env, as_json=o.as_json)
    _expect_safe_env_file(ctx)
    main_db = _main_database(ctx)
    source = _source(ctx, o.backend, o.server_url, o.import_url, main_db, no_import=o.no_import)
    repo_id = state.repo_id or new_repo_id()
    settings = backends.init_settings(o.backend, o.server_url, _dbname(source.url), o.backend_options)
    if o.server_url:
        ctx.registry.set_secret("admin_url", o.server_url)
    be = open_backend(o.backend, _backend_context(ctx, repo_id, settings))
    try:
        root = be.create_root(import_url=source.url)
    except BaseException:
        if o.server_url:
            ctx.registry.forget_secret("admin_url")
        raise
    _record(ctx, repo_id, o.backend, settings, root)
    env_note = _main_env(ctx, be, root, source, has_own=main_db.names_one, overwrite=o.overwrite_env)
    _report(o.backend, root, source, env_note, repo_id, main_db, as_json=o.as_json)
    return 0


def _check_options(backend: str, server_url: str | None, import_url: str | None, *, no_import: bool) -> None:
    if backend not in BACKENDS:
        raise FatalError(f"unknown backend {backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    if server_url and not backends.takes_server_url(backend):
        raise FatalError(
            "--server-url only applies to the local backend", hint="drop --server-url, or use --backend local"
        )
    if no_import and import_url is not None:
        raise FatalError("--import and --no-import contradict each other", hint="pass one of them")


def _expect_same_postgres(recorded: dict[str, Any], options: dict[str, Any]) -> None:
    """A root's data directory only starts on its own PostgreSQL major: `init --postgres` cannot move it."""
    wanted = options.get("postgres")
    if wanted is not None and wanted != recorded.get("postgres"):
        raise FatalError(
            f"treefork is already initialised here, so --postgres {wanted} would not change the PostgreSQL its "
            "clusters run on (a data directory only starts on its own major version)",
            hint="`treefork doctor` shows each cluster's binaries; to change them, remove every workspace, move "
            ".git/treefork aside and `treefork init --postgres ...` again",
        )


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
    note = None
    if overwrite_env:
        note = _main_env(ctx, be, root, Source(None, from_main_env=False), has_own=True, overwrite=True)
    if as_json:
        output.emit_json(
            shapes.record(
                "init",
                {
                    "backend": state.backend,
                    "repo_id": state.repo_id,
                    "root_db_branch": root.name,
                    "root_clone_method": state.root_clone_method,
                    "imported_from": None,
                    "already_initialised": True,
                    "env": note,
                },
            )
        )
    else:
        output.info(f"treefork is already initialised: backend {state.backend}, root database {root.name}")
        if note:
            output.info(note)
    return 0


def _expect_safe_env_file(ctx: Context) -> None:
    """Refuse a main env file treefork must not write a password into (tracked, not ignorable, a symlink)
    before anything is made: no root, no registry entry, no byte in the file."""
    envbuild.exclude_from_git(ctx.repo, ctx.repo.main_root, ctx.config.env_file)
    path = ctx.config.env_path(ctx.repo.main_root)
    text = envfile.read(path) if path.exists() else envbuild.template_text(ctx.repo, ctx.config)
    stand_in = Connection(url="postgresql://treefork:check@127.0.0.1:5432/check")
    envfile.rewrite(text, envbuild.database_updates(ctx.config, stand_in, text, dbsettings.Notes()))  # parses


@dataclass(frozen=True)
class MainDatabase:
    """The database the main worktree's env file names, and in which settings; or why there is none."""

    url: str | None
    where: str = ""
    problem: str = ""  # why there is no url
    unrecognised: bool = False  # the file has database settings treefork cannot read

    @property
    def names_one(self) -> bool:
        """The file has database settings of its own (a URL of another kind too): init leaves them alone
        unless their data went into the root."""
        return self.url is not None or self.unrecognised


def _main_database(ctx: Context) -> MainDatabase:
    """A URL (url_var first, then the other known URL variables) or a family of split settings (treefork.toml's
    database_parts first, then POSTGRES_*, libpq's PG*, Laravel's DB_*, DATABASE_*)."""
    name = ctx.config.env_file
    env: dict[str, str | None] = dict(envbuild.load_env(ctx.repo.main_root / name))
    for value in env.values():
        if dbsettings.parse(value):
            register(value)
    url_var = ctx.config.url_var
    if env.get(url_var) and not dbsettings.parse(env[url_var]):
        scheme = (env[url_var] or "").partition(":")[0]
        problem = f"{url_var} in {name} is not a PostgreSQL URL ({scheme}:...)"
        return MainDatabase(None, problem=problem, unrecognised=True)
    for var in (url_var, ctx.config.direct_url_var, *envbuild.DIRECT_URL_VARS, *envbuild.POOLED_URL_VARS):
        if var and dbsettings.parse(env.get(var)):
            return MainDatabase(dbsettings.libpq_url(env[var] or ""), where=var)
    for family in dbfamilies.families(ctx.config.database_parts, env):
        parts = family.values(env)
        register(parts.get("password"))
        if parts.get("host") is not None or parts.get("dbname") is not None:
            return MainDatabase(family.url(env), where=f"{family.name} settings")
    connection = env.get("DB_CONNECTION")
    if connection and connection.lower() not in ("pgsql", "postgres", "postgresql"):
        return MainDatabase(None, problem=f"DB_CONNECTION={connection} in {name} is not PostgreSQL", unrecognised=True)
    looks = [
        k for k in env if set(k.upper().split("_")) & _DATABASE_WORDS and not set(k.upper().split("_")) & _OTHER_STORES
    ]
    if looks:
        problem = f"{name} has database settings treefork does not recognise ({', '.join(looks[:4])})"
        return MainDatabase(None, problem=problem, unrecognised=True)
    return MainDatabase(None, problem=f"{name} names no database")


_DATABASE_WORDS = {"DB", "DATABASE", "POSTGRES", "POSTGRESQL", "PGSQL", "PSQL", "DSN"}
_OTHER_STORES = {"REDIS", "MONGO", "MONGODB", "CACHE", "ELASTIC", "CLICKHOUSE", "TEST"}


_UNRECOGNISED_HINT = (
    "name its variables in treefork.toml (database_parts = ['MYAPP_DB_'], see docs/configuration.md), "
    "or `treefork init --import postgresql://user:pass@host/db`, or `treefork init --no-import` to start empty"
)


def _source(
    ctx: Context,
    backend: str,
    server_url: str | None,
    import_url: str | None,
    main_db: MainDatabase,
    *,
    no_import: bool,
) -> Source:
    """What to copy into the root: --import URL; else, on the embedded local backend, the main worktree's
    existing database (a URL or split settings); else nothing. Database settings treefork cannot read stop
    the import with the fix, rather than leave a silently empty root."""
    if no_import:
        return Source(None, from_main_env=False)
    if import_url == "":  # --import with no URL
        if not main_db.url:
            raise FatalError(f"--import needs a URL: {main_db.problem}", hint=_UNRECOGNISED_HINT)
        return Source(main_db.url, from_main_env=True)
    if import_url:
        register(import_url)
        return Source(import_url, from_main_env=dbsettings.libpq_url(import_url) == main_db.url)
    if not backends.imports_main_database(backend, server_url):
        return Source(None, from_main_env=False)
    if main_db.url:
        return Source(main_db.url, from_main_env=True)
    if main_db.unrecognised:
        raise FatalError(f"cannot tell which database to import: {main_db.problem}", hint=_UNRECOGNISED_HINT)
    return Source(None, from_main_env=False)


def _dbname(url: str | None) -> str:
    """The root's database name: the imported database's own (an app that hard-codes it still works)."""
    name = unquote(urlsplit(url).path.lstrip("/")) if url else ""
    ok = name and "\0" not in name and len(name.encode()) < 64 and name not in ("postgres", "template0", "template1")
    return name if ok else "app"


def _backend_context(ctx: Context, repo_id: str, settings: dict[str, Any]) -> BackendContext:
    return backend_context(ctx.repo, ctx.config, ctx.registry, repo_id=repo_id, settings=settings)


def _record(ctx: Context, repo_id: str, backend: str, settings: dict[str, Any], root: DbBranch) -> None:
    with ctx.registry.transaction() as st:
        st.repo_id, st.backend = repo_id, backend
        st.backend_settings = {**settings, **st.backend_settings}
        st.root_db_branch, st.root_db_id, st.root_clone_method = root.name, root.id, root.clone_method


def _main_env(ctx: Context, be: Backend, root: DbBranch, source: Source, *, has_own: bool, overwrite: bool) -> str:
    """Point the main worktree's database settings (each in its own spelling) at the root when its data went
    there (or it named no database, or --overwrite-env); the old values are kept, 0600, in
    .git/treefork/previous.env. Checked safe to write before anything is written."""
    path = ctx.config.env_path(ctx.repo.main_root)
    exists = path.exists()
    # No env file yet: start it from the example, as worktrees do.
    text = envfile.read(path) if exists else envbuild.template_text(ctx.repo, ctx.config)
    name = ctx.config.env_file
    if exists and has_own and not (overwrite or source.from_main_env):
        return f"{name} keeps its own database settings (`treefork init --overwrite-env` points them at the root)"
    envbuild.exclude_from_git(ctx.repo, ctx.repo.main_root, name)
    notes = dbsettings.Notes()
    updates = envbuild.database_updates(ctx.config, be.connection(root), text, notes)
    before = envfile.values(text) if exists else {}
    replaced = {k: v for k, v in before.items() if k in updates and v is not None and v != updates[k]}
    if replaced:
        previous = ctx.registry.dir / "previous.env"
        atomic_write_text(previous, envfile.rewrite("", replaced), mode=0o600)
    if envfile.write(path, envfile.rewrite(text, updates)):
        envbuild.say_notes(notes, path)
    kept = f"; the old values are kept in {ctx.registry.dir / 'previous.env'}" if replaced else ""
    keys = [k for k in updates if k in before] or [ctx.config.url_var]
    return f"{name} now points at the root ({', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}){kept}"


def _report(
    backend: str, root: DbBranch, source: Source, env_note: str, repo_id: str, main_db: MainDatabase, *, as_json: bool
) -> None:
    from treefork.backends.local.importer import safe_url

    imported = safe_url(source.url) if source.url else None
    if as_json:
        output.emit_json(
            shapes.record(
                "init",
                {
                    "backend": backend,
                    "repo_id": repo_id,
                    "root_db_branch": root.name,
                    "root_clone_method": root.clone_method,
                    "imported_from": imported,
                    "already_initialised": False,
                    "env": env_note,
                },
            )
        )
        return
    where = f" ({main_db.where})" if source.from_main_env and main_db.where else ""
    empty = f"empty ({main_db.problem})" if source.url is None and main_db.problem else "empty"
    what = f"with the data of {imported}{where}" if imported else empty
    output.info(f"treefork ready: backend {backend}, root database {root.name}, {what}")
    hint = " (`treefork init --no-import` would have left it alone)" if source.from_main_env else ""
    output.info(f"{env_note}{hint}; next: treefork new <name>")
