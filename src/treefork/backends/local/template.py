"""The local backend on a PostgreSQL server the user runs (`treefork init --server-url`): we cannot copy the
files of someone else's server, so a branch is `CREATE DATABASE child TEMPLATE parent STRATEGY FILE_COPY`.

PostgreSQL refuses a template that anyone is connected to. Then, unless --terminate-blockers asks to
disconnect them, the child is filled with a consistent logical copy instead (pg_dump of the parent's
snapshot | pg_restore), and its method is reported as `logical`.

Each repo gets its own login role, `tf_<repo_id>`, which owns the repo's databases; the superuser
password never leaves treefork. Every database carries the comment `treefork:<repo_id>:<workspace>`,
and nothing without that mark is ever dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from treefork.backends.base import (
    COPY,
    EMPTY,
    IMPORT,
    ROOT_MARK,
    BackendContext,
    Connection,
    CreateOptions,
    DbBranch,
    ServedElsewhere,
)
from treefork.backends.local import LocalTraits, libpq
from treefork.backends.local.libpq import SQL, Ident, Literal
from treefork.background import Background
from treefork.errors import BackendError, FatalError, ParentBusyError
from treefork.names import db_name, db_prefix, root_db_name
from treefork.redact import register

LEFTOVER_WAIT_SECONDS = 60.0


class _StillBeingCreated(Exception):
    """CREATE DATABASE met a database of the same name that a killed command's statement is still making."""


LOGICAL = "logical"
SNAPSHOT = "@snapshot-"  # in a snapshot's workspace name: `<workspace>@snapshot-<the merge's tag>`


@dataclass(frozen=True)
class ServerInfo:
    host: str
    port: int
    user: str
    password: str
    dbname: str = "postgres"

    def conninfo(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }


class TemplateBackend(LocalTraits, ServedElsewhere):
    def __init__(self, ctx: BackendContext) -> None:
        self.ctx = ctx
        self._server: ServerInfo | None = None
        self._admin: libpq.Connection | None = None
        self._connecting: Background[libpq.Connection] | None = None
        self.external = True
        self._methods: dict[str, str] = {}  # databases this process filled logically

    # ---- lifecycle --------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """The server answers the admin URL: the connection that tells is kept for the command's next steps."""
        with self.admin():
            pass

    def server(self) -> ServerInfo:
        if self._server is None:
            self._server = self._external_server()
        return self._server

    def _external_server(self) -> ServerInfo:
        url = self.ctx.secret("admin_url")
        if not url:
            raise FatalError(
                "the admin URL of your PostgreSQL server is missing",
                hint="run `treefork init --server-url postgresql://admin:PASSWORD@HOST/postgres` again",
            )
        register(url)
        parts = urlsplit(url)
        register(parts.password)
        return ServerInfo(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or "",
            dbname=(parts.path.lstrip("/") or "postgres"),
        )

    def prepare(self) -> None:
        if self._admin is None and self._connecting is None:
            self._connecting = Background(self._connect_admin, name="connect")

    @contextlib.contextmanager
    def admin(self) -> Iterator[libpq.Connection]:
        """One superuser connection per process, reused by every step of a command."""
        if self._connecting is not None:
            job, self._connecting = self._connecting, None
            self._admin = job.result()
        if self._admin is None or self._admin.closed:
            self._admin = self._connect_admin()
        yield self._admin

    def _connect_admin(self) -> libpq.Connection:
        try:
            return libpq.connect(**self.server().conninfo(), connect_timeout=5)
        except libpq.PgConnectError as e:
            raise BackendError(
                e.message, hint="check the server is up and the admin URL given to `treefork init --server-url`"
            ) from None

    # ---- the repo's role ----------------------------------------------------------------------
    @property
    def role(self) -> str:
        return f"tf_{self.ctx.repo_id}"

    def _role_password(self) -> str:
        password = self.ctx.secret("role_password", create=True)
        assert password
        register(password)
        return password

    def _ensure_role(self, conn: libpq.Connection) -> None:
        """The repo's role exists with the password in secrets.json. The role's comment holds a digest of that
        password, so the usual case is one read, not an ALTER ROLE (a catalog write and a WAL flush) per command."""
        password = self._role_password()
        mark = "treefork:password-sha256:" + hashlib.sha256(password.encode()).hexdigest()[:16]
        if self._role_mark(conn) == mark:
            return
        # Parallel `treefork new` all get here on a fresh repo: two concurrent ALTER ROLEs of the same role
        # fail with "tuple concurrently updated", so serialise them with a lock held until the change commits.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", ("treefork-role:" + self.role,))
            verb = "ALTER" if conn.one("SELECT 1 FROM pg_roles WHERE rolname = $1", (self.role,)) else "CREATE"
            verifier = conn.scram_verifier(self.role, password)  # the password itself never reaches the server's log
            conn.execute(SQL.of(verb + " ROLE {} LOGIN CREATEDB PASSWORD {}", Ident(self.role), Literal(verifier)))
            conn.execute(SQL.of("COMMENT ON ROLE {} IS {}", Ident(self.role), Literal(mark)))

    def _role_mark(self, conn: libpq.Connection) -> str | None:
        row = conn.one("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", (self.role,))
        return row[0] if row else None

    # ---- branches -----------------------------------------------------------------------------
    def root(self) -> DbBranch:
        name = root_db_name(self.ctx.repo_id)
        return DbBranch(
            name=name,
            id=name,
            workspace=ROOT_MARK,
            clone_method=None,  # how it was made: the registry's record
        )

    def create_root(self, *, import_url: str | None) -> DbBranch:
        root = self.root()
        with self.admin() as conn:
            self._ensure_role(conn)
            if not self._exists(conn, root.name):
                self._create_marked(conn, root.name, ROOT_MARK, template=None)
                if import_url:
                    try:
                        self._import(import_url, root)
                    except BaseException:
                        conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(root.name)))
                        raise
        method = IMPORT if import_url else EMPTY
        return DbBranch(name=root.name, id=root.name, workspace=ROOT_MARK, clone_method=method)

    def create_branch(self, workspace: str, *, parent: DbBranch, options: CreateOptions) -> DbBranch:
        name = db_name(self.ctx.repo_id, workspace)
        with self.admin() as conn:
            give_up_at = time.monotonic() + LEFTOVER_WAIT_SECONDS
            while True:
                try:
                    self._create_or_adopt(conn, name, workspace, parent, options)
                    break
                except _StillBeingCreated:
                    # only a killed `new` can own this name now (a live one holds the workspace), and its
                    # CREATE DATABASE runs on in the server until it ends: wait, then drop what it left
                    if time.monotonic() > give_up_at:
                        raise BackendError(
                            f"database {name} is still being created by an interrupted command",
                            hint="retry in a minute, or see `treefork server status`",
                        ) from None
                    time.sleep(0.2)
        method = self._methods.get(name, self.clone_method())
        return DbBranch(name=name, id=name, workspace=workspace, clone_method=method)

    def _create_or_adopt(
        self, conn: libpq.Connection, name: str, workspace: str, parent: DbBranch, options: CreateOptions
    ) -> None:
        existing = self._mark_of(conn, name)
        if existing is not None:
            if existing != self._mark(workspace):
                raise BackendError(
                    f"database {name} exists but was not made by treefork for {workspace!r}",
                    hint="drop or rename it yourself; treefork never touches databases it did not create",
                )
            return
        if self._drop_unmarked_leftover(conn, name):
            self.ctx.progress(f"dropped {name}: an interrupted create left it without its mark")
        if not self._exists(conn, parent.name):
            raise BackendError(
                f"the parent database {parent.name} does not exist",
                hint="run `treefork gc` then recreate the parent workspace, or use --from with another workspace",
            )
        self._ensure_role(conn)
        owner = self._owner_of_new(name, workspace, parent)
        if owner != self.role:
            self._ensure_workspace_role(conn, owner, workspace)
        if options.terminate_blockers:
            with self._parent_quiet(conn, parent.name, terminate=True):
                self._create_marked(conn, name, workspace, template=parent.name, owner_role=owner)
            self._hand_over(conn, name, self._owner_of(parent.name), owner)
            return
        if not self._blockers(conn, parent.name):
            try:
                self._create_marked(conn, name, workspace, template=parent.name, owner_role=owner)
                self._hand_over(conn, name, self._owner_of(parent.name), owner)
                return
            except ParentBusyError:
                pass  # a client connected meanwhile
        self._logical_copy(conn, parent.name, name, workspace, owner=owner)

    def _logical_copy(self, conn: libpq.Connection, parent: str, name: str, workspace: str, *, owner: str) -> None:
        """The parent is in use, so it cannot be a template: copy it logically (pg_dump reads one consistent
        snapshot) into a new empty database, without disconnecting anyone."""
        self.ctx.progress(f"{parent} has live connections: copying it with pg_dump | pg_restore (method: logical)")
        self._create_marked(conn, name, workspace, template=None, owner_role=owner)
        from treefork.backends.local.importer import copy_database

        info = self.server()
        at = f"{info.host}:{info.port}"
        source = (
            f"postgresql://{quote(info.user, safe='')}:{quote(info.password, safe='')}@{at}/{quote(parent, safe='')}"
        )
        target = self._url(name, owner)
        try:
            copy_database(source, target, target_major=self._major(conn))
        except BaseException:
            conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(name)))
            raise
        self._methods[name] = LOGICAL

    def find_branch_or_none(self, workspace: str) -> DbBranch | None:
        name = db_name(self.ctx.repo_id, workspace)
        with self.admin() as conn:
            mark = self._mark_of(conn, name)
            if mark == self._mark(workspace):
                return DbBranch(name=name, id=name, workspace=workspace, clone_method=self.clone_method())
            if mark is None and self._drop_unmarked_leftover(conn, name, workspace=workspace):
                # killed between CREATE DATABASE and COMMENT: both callers (new, rm) want it gone
                self.ctx.progress(f"dropped {name}: an interrupted create left it without its mark")
        return None

    def delete_branch(self, branch: DbBranch) -> None:
        if branch.workspace in (None, ROOT_MARK) or branch.name == self.root().name:
            raise BackendError(
                f"refusing to drop {branch.name}: it is the root", hint="the root database is never dropped by treefork"
            )
        with self.admin() as conn:
            mark = self._mark_of(conn, branch.name)
            if mark is None and not self._exists(conn, branch.name):
                return  # already gone
            if mark is None and self._drop_unmarked_leftover(conn, branch.name, workspace=branch.workspace):
                return
            if mark != self._mark(branch.workspace):
                raise BackendError(
                    f"refusing to drop {branch.name}: treefork did not create it",
                    hint="drop it yourself if you are sure",
                )
            conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(branch.name)))
            self._drop_workspace_role(conn, self._owner_of(branch.name), branch.workspace)

    def drop_throwaway_repo(self) -> None:
        """Drop the root database and the repo's role. Only `treefork demo` calls this, for the repo it made."""
        with self.admin() as conn:
            conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(self.root().name)))
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(shobj_description(oid, 'pg_authid'), $1)",
                (self._mark(""),),
            )
            for (role,) in roles:
                if role is not None and role.startswith(db_prefix(self.ctx.repo_id)):
                    conn.execute(SQL.of("DROP ROLE IF EXISTS {}", Ident(role)))
            conn.execute(SQL.of("DROP ROLE IF EXISTS {}", Ident(self.role)))

    def list_branches(self) -> list[DbBranch]:
        prefix = self._mark("")
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE starts_with(shobj_description(oid, 'pg_database'), $1)",
                (prefix,),
            )
        return [
            DbBranch(name=n, id=n, workspace=c[len(prefix) :], clone_method=self.clone_method())
            for n, c in rows
            if n is not None and c is not None and c[len(prefix) :] != ROOT_MARK
        ]

    def connection(self, branch: DbBranch) -> Connection:
        url = self._url(branch.name, self._owner_of(branch.name))
        return Connection(url=url, direct_url=url)

    def _url(self, dbname: str, role: str) -> str:
        """role's URL of one of its databases."""
        info = self.server()
        who = f"{quote(role, safe='')}:{quote(self._password_of(role), safe='')}"
        return f"postgresql://{who}@{info.host}:{info.port}/{quote(dbname, safe='')}"

    # ---- a role for each workspace ------------------------------------------------------------
    # The repo's role owns the root (main's URL). Each workspace's database is owned by a role of its own,
    # named as the database is (roles and databases are apart in PostgreSQL), so that an agent's URL can drop
    # no other database of the repo. Repos made before this keep the repo's role for everything.
    def _workspace_roles(self) -> bool:
        return bool(self.ctx.settings.get("workspace_roles"))

    def _owner_of(self, dbname: str) -> str:
        """The role that owns dbname (a database of this repo) and whose URL the app gets."""
        if not self._workspace_roles() or dbname == self.root().name:
            return self.role
        return dbname

    def _owner_of_new(self, name: str, workspace: str, parent: DbBranch) -> str:
        """A snapshot is owned by its branch's role (restoring it is a rename); a workspace by its own."""
        return self._owner_of(parent.name) if SNAPSHOT in workspace else self._owner_of(name)

    def _password_of(self, role: str) -> str:
        """The repo role's password is a secret of the repo; a workspace role's is derived from it (HMAC), so
        nothing more is stored and one workspace's password tells nothing of another's."""
        key = self._role_password()
        if role == self.role:
            return key
        password = hmac.new(key.encode(), role.encode(), hashlib.sha256).hexdigest()[:32]
        register(password)
        return password

    def _ensure_workspace_role(self, conn: libpq.Connection, role: str, workspace: str) -> None:
        mark = self._mark(workspace)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", ("treefork-role:" + role,))
            row = conn.one("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", (role,))
            if row is not None and row[0] != mark:
                raise BackendError(
                    f"role {role} exists but was not made by treefork for {workspace!r}",
                    hint="drop or rename it yourself; treefork never touches roles it did not create",
                )
            verb = "ALTER" if row is not None else "CREATE"
            verifier = conn.scram_verifier(role, self._password_of(role))
            # CREATEDB: test runners (Django's `manage.py test`) create a database beside the app's
            conn.execute(SQL.of(verb + " ROLE {} LOGIN CREATEDB PASSWORD {}", Ident(role), Literal(verifier)))
            conn.execute(SQL.of("COMMENT ON ROLE {} IS {}", Ident(role), Literal(mark)))

    def _hand_over(self, admin: libpq.Connection, dbname: str, old: str, new: str) -> None:
        """A copy made from a template keeps its objects' owner (the parent's role): give them to the new
        database's own role. REASSIGN OWNED also gives away the databases the old role owns (the parent among
        them): they are given back in the same transaction, so no one ever sees them elsewhere."""
        if old == new:
            return
        try:
            self._reassign(dbname, old, new)
        except BaseException:
            admin.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(dbname)))
            raise

    def _reassign(self, dbname: str, old: str, new: str) -> None:
        with libpq.connect(**{**self.server().conninfo(), "dbname": dbname}, connect_timeout=5) as conn:
            with conn.transaction():
                owned = conn.execute(
                    "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)",
                    (old,),
                )
                conn.execute(SQL.of("REASSIGN OWNED BY {} TO {}", Ident(old), Ident(new)))
                for (db,) in owned:
                    if db is not None and db != dbname:
                        conn.execute(SQL.of("ALTER DATABASE {} OWNER TO {}", Ident(db), Ident(old)))

    def _drop_workspace_role(self, conn: libpq.Connection, role: str, workspace: str) -> None:
        """The role goes with its database, unless it still owns something elsewhere (a database the app's
        test runner left): then it stays, said."""
        if role == self.role:
            return
        row = conn.one("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", (role,))
        if row is None or row[0] != self._mark(workspace):
            return
        try:
            conn.execute(SQL.of("DROP ROLE {}", Ident(role)))
        except libpq.PgError as e:
            self.ctx.progress(f"kept role {role}: {e.message}")

    def clone_method(self) -> str:
        return str(self.ctx.settings.get("clone_method", COPY))

    def reset_branch(self, branch: DbBranch, *, source: DbBranch) -> DbBranch:
        raise _not_here("reset")

    def snapshot(self, branch: DbBranch, *, tag: str) -> DbBranch:
        """A copy of branch, as any new branch is made (a TEMPLATE copy when no one is connected, else a logical
        one), owned by branch's own role; tag, the merge's, is in its name."""
        return self.create_branch(_snapshot_name(branch, tag), parent=branch, options=CreateOptions())

    def find_snapshot_or_none(self, branch: DbBranch, *, tag: str) -> DbBranch | None:
        return self.find_branch_or_none(_snapshot_name(branch, tag))

    def restore(self, branch: DbBranch, *, snapshot: DbBranch) -> None:
        """The snapshot takes branch's name (same URL, same role), in one transaction; the clients connected
        to branch are disconnected, as the local backend's restart does."""
        aside = db_name(self.ctx.repo_id, f"{branch.workspace}@rolled-back-{int(time.time() * 1000)}")
        with self.admin() as conn:
            if self._mark_of(conn, snapshot.name) != self._mark(snapshot.workspace or ""):
                raise BackendError(f"cannot restore {branch.name}: its snapshot {snapshot.name} is gone")
            with self._parent_quiet(conn, branch.name, terminate=True), conn.transaction():
                conn.execute(SQL.of("ALTER DATABASE {} RENAME TO {}", Ident(branch.name), Ident(aside)))
                conn.execute(SQL.of("ALTER DATABASE {} RENAME TO {}", Ident(snapshot.name), Ident(branch.name)))
                conn.execute(
                    SQL.of(
                        "COMMENT ON DATABASE {} IS {}",
                        Ident(branch.name),
                        Literal(self._mark(branch.workspace or ROOT_MARK)),
                    )
                )
                conn.execute(SQL.of("COMMENT ON DATABASE {} IS NULL", Ident(aside)))
            conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(aside)))

    def drop_snapshot(self, snapshot: DbBranch) -> None:
        if snapshot.workspace is None or SNAPSHOT not in snapshot.workspace:
            raise BackendError(f"refusing to drop {snapshot.name}: it is not a snapshot")
        with self.admin() as conn:
            if self._mark_of(conn, snapshot.name) == self._mark(snapshot.workspace):
                conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(snapshot.name)))

    def writes_so_far(self, branch: DbBranch) -> int | None:
        return None

    def schema_diff(self, branch: DbBranch, *, base: DbBranch) -> str:
        from treefork.backends import schema_diff

        return schema_diff.diff_urls(self.connection(branch).url, self.connection(base).url)

    def schema_url_or_none(self, branch: DbBranch) -> str | None:
        return self.connection(branch).url

    # ---- helpers ------------------------------------------------------------------------------
    def _mark(self, workspace: str) -> str:
        return f"treefork:{self.ctx.repo_id}:{workspace}"

    def _exists(self, conn: libpq.Connection, name: str) -> bool:
        return conn.one("SELECT 1 FROM pg_database WHERE datname = $1", (name,)) is not None

    def _mark_of(self, conn: libpq.Connection, name: str) -> str | None:
        row = conn.one("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", (name,))
        return row[0] if row else None

    def _drop_unmarked_leftover(self, conn: libpq.Connection, name: str, *, workspace: str | None = None) -> bool:
        """Drop a database that an interrupted create (SIGKILL between CREATE DATABASE and COMMENT) left
        without its mark. Only our own derived names qualify: tf_<this repo's random id>_<slug>_<hash>."""
        if not name.startswith(db_prefix(self.ctx.repo_id)) or name == self.root().name:
            return False
        if workspace is not None and name != db_name(self.ctx.repo_id, workspace):
            return False
        if self._mark_of(conn, name) is not None or not self._exists(conn, name):
            return False
        conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", Ident(name)))
        return True

    def _create_marked(
        self, conn: libpq.Connection, name: str, workspace: str, *, template: str | None, owner_role: str | None = None
    ) -> None:
        """CREATE, then mark and lock down; if marking fails the new database is dropped again."""
        ident, owner = Ident(name), Ident(owner_role or self.role)
        if template is None:
            conn.execute(SQL.of("CREATE DATABASE {} OWNER {}", ident, owner))
        else:
            if not self.external:
                conn.execute("SET file_copy_method = clone")
            try:
                conn.execute(
                    SQL.of("CREATE DATABASE {} TEMPLATE {} OWNER {} STRATEGY FILE_COPY", ident, Ident(template), owner)
                )
            except libpq.PgError as e:
                if e.sqlstate == libpq.OBJECT_IN_USE:
                    raise self._busy_error(conn, template) from e
                if e.sqlstate in (libpq.DUPLICATE_DATABASE, libpq.UNIQUE_VIOLATION):  # a killed create still finishing
                    raise _StillBeingCreated(name) from None
                raise
        try:
            with conn.transaction():  # one commit (one WAL flush) for the mark and the grants
                conn.execute(SQL.of("COMMENT ON DATABASE {} IS {}", ident, Literal(self._mark(workspace))))
                conn.execute(SQL.of("REVOKE ALL ON DATABASE {} FROM PUBLIC", ident))
                conn.execute(SQL.of("GRANT ALL ON DATABASE {} TO {}", ident, owner))
        except BaseException:
            conn.execute(SQL.of("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident))
            raise

    def _blockers(self, conn: libpq.Connection, parent: str) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT pid, coalesce(application_name, ''), coalesce(usename, ''), coalesce(client_addr::text, '') FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            (parent,),
        )
        return [{"pid": int(p or 0), "application_name": a, "user": u, "client_addr": c} for p, a, u, c in rows]

    def _busy_error(self, conn: libpq.Connection, parent: str) -> ParentBusyError:
        blockers = self._blockers(conn, parent)
        who = (
            ", ".join(f"pid {b['pid']} ({b['application_name'] or 'no application_name'})" for b in blockers)
            or "a client that just left"
        )
        return ParentBusyError(
            f"cannot branch {parent}: it has live connections: {who}",
            hint="stop those clients, or pass --terminate-blockers to disconnect them just for the clone",
            blockers=blockers,
        )

    @contextlib.contextmanager
    def _parent_quiet(self, conn: libpq.Connection, parent: str, *, terminate: bool) -> Iterator[None]:
        """A template must have no connections. Either say who is connected, or (explicitly) cut them off
        for the few milliseconds of the clone, refusing new ones meanwhile."""
        blockers = self._blockers(conn, parent)
        for _ in range(20):  # a client that just disconnected is still leaving for a few milliseconds
            if not blockers or terminate:
                break
            time.sleep(0.05)
            blockers = self._blockers(conn, parent)
        if not blockers:
            yield
            return
        if not terminate:
            raise self._busy_error(conn, parent)
        ident = Ident(parent)
        conn.execute(SQL.of("ALTER DATABASE {} ALLOW_CONNECTIONS false", ident))
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                (parent,),
            )
            yield
        finally:
            conn.execute(SQL.of("ALTER DATABASE {} ALLOW_CONNECTIONS true", ident))

    def _import(self, url: str, root: DbBranch) -> None:
        from treefork.backends.local.importer import import_database

        with self.admin() as conn:
            major = self._major(conn)
        import_database(url, self.connection(root).url, progress=self.ctx.progress, target_major=major)

    def _major(self, conn: libpq.Connection) -> int:
        """The server's major version (15 for 15.4): the one treefork's tools must speak to."""
        row = conn.one("SELECT current_setting('server_version_num')::int / 10000")
        return int(row[0]) if row and row[0] is not None else 0


def _not_here(what: str) -> FatalError:
    return FatalError(
        f"treefork cannot {what} on a server you run (`init --server-url`); nothing was changed",
        hint="use the embedded local backend (`treefork init`) for reset and merge with migrations",
    )


def _snapshot_name(branch: DbBranch, tag: str) -> str:
    """The workspace name a merge's snapshot of branch is made under."""
    return f"{branch.workspace or ROOT_MARK}{SNAPSHOT}{tag}"
