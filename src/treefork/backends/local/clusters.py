"""The local backend on the embedded PostgreSQL 18: one cluster per workspace, forked online from its parent.

Every workspace, and the root, is its own cluster on its own fixed loopback port, started on demand and kept
running. A child is a physical copy of its parent taken while the parent serves its clients (fork.py), so a
dev server connected to the parent never notices. The child's database has the parent's name; its URL
differs only in port and password. Each cluster admits SCRAM on 127.0.0.1 only, and treefork's own
connections refuse any other method.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from treefork import debug, diskuse, interrupts
from treefork.backends.base import BackendContext, Connection, CreateOptions, DbBranch, ExtensionsMade, Health
from treefork.backends.local import LocalTraits, admin_extensions, binaries, fork, libpq
from treefork.backends.local.cluster import (
    ADMIN_USER,
    CREATING,
    OLD_DATA,
    READY,
    REMOVING,
    STAGING,
    Cluster,
    ClusterRecord,
    describe,
)
from treefork.backends.local.store import ROOT, ClusterStore, cluster_id, creator_alive, new_record
from treefork.background import Background
from treefork.errors import BackendError, FatalError

ROLE_WAIT = 5.0


class ClusterBackend(LocalTraits):
    def __init__(self, ctx: BackendContext) -> None:
        self.ctx = ctx
        self.store = ClusterStore(_home(ctx))
        self._started: set[str] = set()
        self._role_unchecked: set[str] = set()  # forked by this command, not yet seen to admit its role
        self._reflinked: bool | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        self._running(self._root_record())

    def prepare(self) -> None:
        pass  # every cluster has its own connection, opened where it is needed

    # ---- branches -----------------------------------------------------------------------------
    def root(self) -> DbBranch:
        return self._branch(self._root_record())

    def create_root(self, *, import_url: str | None) -> DbBranch:
        from treefork.backends.local import importer

        cid = cluster_id(self.ctx.repo_id, ROOT)
        cluster = self.store.cluster(cid)
        rec = cluster.record_or_none()
        if rec is not None and rec.status == READY:
            return self._branch(rec)
        self._refuse_a_home_in_the_repository()
        if rec is not None:
            cluster.destroy()  # an interrupted init
        dbname = str(self.ctx.settings.get("dbname") or "app")
        bins = binaries.for_root(self.ctx, import_url)  # before anything is made: a refusal leaves nothing
        rec = new_record(self.ctx.repo_id, ROOT, dbname=dbname, role="app", parent=None, repo_dir=self._repo_dir())
        rec.run_on(bins)
        rec.binding = self._binding(rec.id)
        with self.store.creating(rec) as cluster:
            self.store.initdb(cluster, rec, extensions=self.ctx.config.extensions)
            rec.method = "empty"
            if import_url:
                importer.import_into(import_url, cluster, rec, progress=self.ctx.progress)
                rec.method = "import"
        return self._branch(rec)

    def create_branch(self, workspace: str, *, parent: DbBranch, options: CreateOptions) -> DbBranch:
        if options.ttl_seconds is not None:
            raise FatalError(
                "--ttl applies to Neon branches only", hint="drop --ttl (local workspaces last until `treefork rm`)"
            )
        parent_cluster, parent_rec = self._expect(parent.id)
        rec = new_record(
            self.ctx.repo_id,
            workspace,
            dbname=parent_rec.dbname,
            role=parent_rec.role,
            parent=parent_rec.id,
            repo_dir=self._repo_dir(),
            runs_on=parent_rec,  # a data directory only starts on its own major
        )
        rec.binding = self._binding(rec.id)
        self._clear_leftover(rec.id, workspace)
        verifiers = fork.new_verifiers(rec)
        from treefork.backends.local.importer import freeze

        debug.mark("fork:begin")
        checking = Background(lambda: freeze(parent_cluster, parent_rec, only_if_needed=True), name="freeze-check")
        with self._session(parent_cluster, parent_rec) as session:
            debug.mark("fork:parent-session")
            if frozen := _checked(checking, lambda: freeze(parent_cluster, parent_rec, only_if_needed=True)):
                self.ctx.progress(f"froze {', '.join(frozen)} in the parent first, so the fork stays copy-on-write")
            debug.mark("fork:freeze-check")
            with self.store.creating(rec) as child:
                debug.mark("fork:registered")
                rec.method = fork.online_copy(session, parent_cluster, child, label=f"treefork fork {rec.id}")
                session.close()  # the parent is no longer needed: its backup has ended
                debug.mark("fork:after-backup")
                with self._first_start(child, rec, password=parent_rec.admin_password) as conn:
                    debug.crash_point("fork:after-start")  # the child's postmaster runs
                    fork.rekey(conn, child, rec, verifiers)
                debug.mark("fork:after-rekey")
        self._started.add(rec.id)
        self._role_unchecked.add(rec.id)  # connection() waits for it: `new` records its fork point meanwhile
        return self._branch(rec)

    def _refuse_a_home_in_the_repository(self) -> None:
        """A home inside the worktree (a relative TREEFORK_HOME, say) would put every cluster's passwords and
        data files where `git add -A` takes them."""
        home, repo = self.store.home.resolve(), self.ctx.main_root.resolve()
        if home == repo or repo in home.parents:
            raise FatalError(
                f"TREEFORK_HOME ({home}) is inside the repository: `git add -A` would add its passwords and data files",
                hint="set TREEFORK_HOME to an absolute path outside the repository, or unset it",
            )

    @staticmethod
    def _session(cluster: Cluster, rec: ClusterRecord) -> libpq.Connection:
        """The admin session a fork's backup runs in (it also tells that the cluster runs), the cluster started
        first if it does not answer. On the `postgres` database: the app's own stays free for its users."""
        cluster.expect_answering(rec)  # a stopped (SIGSTOP) postmaster would let the connection wait
        try:
            session = cluster.admin(rec)
        except libpq.PgConnectError:
            cluster.ensure_running(rec)  # starts it, or says why it cannot
            session = cluster.admin(rec)
        if not rec.least_privilege:
            cluster.downgrade(rec, session)
        return session

    def _clear_leftover(self, cid: str, workspace: str) -> None:
        """A half-made cluster of this workspace from a killed command goes; a finished one is never touched."""
        leftover = self.store.cluster(cid)
        old = leftover.record_or_none()
        if old is None:
            if leftover.dir.exists():
                leftover.destroy()  # killed before its record was written
            return
        if old.status == READY or old.repo_id != self.ctx.repo_id or old.workspace != workspace:
            raise BackendError(
                f"{describe(old)} already exists", hint=f"`treefork ls` shows it; `treefork rm {workspace}` first"
            )
        if creator_alive(old):
            raise BackendError(f"{describe(old)} is being created by process {old.pid}", hint="wait for it to finish")
        leftover.destroy()

    def _first_start(self, child: Cluster, rec: ClusterRecord, *, password: str) -> libpq.Connection:
        """Start a fresh copy admitting only the admin (whose password is still the parent's); returns the admin
        connection that found it ready."""
        for _ in range(5):
            try:
                return _kept(child.start(rec, admin_only=True, password=password, keep=True))
            except BackendError as e:
                if "is taken by" not in e.message:
                    raise
                self.store.repick_port(child, rec)  # lost a race for the port: nothing names it yet
        return _kept(child.start(rec, admin_only=True, password=password, keep=True))

    def _wait_for_role(self, rec: ClusterRecord) -> None:
        """pg_reload_conf() only signals the postmaster: wait until it admits the role (and so check the
        workspace's own credentials work before any env file names them: connection() waits for a fork's)."""
        give_up = time.monotonic() + ROLE_WAIT
        while True:
            try:
                libpq.connect(**self._role_conninfo(rec), connect_timeout=2, require_auth="scram-sha-256").close()
                return
            except libpq.PgConnectError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.005)

    def find_branch_or_none(self, workspace: str) -> DbBranch | None:
        cluster = self.store.cluster(cluster_id(self.ctx.repo_id, workspace))
        rec = cluster.record_or_none()
        if rec is None or rec.repo_id != self.ctx.repo_id or rec.workspace != workspace:
            return None
        if rec.status != READY:
            if not creator_alive(rec):
                cluster.destroy()  # a killed fork: nothing names it yet
            return None
        if not self._bound(rec):
            return None  # a finished cluster this repository's treefork did not make (a planted record): not adopted
        return self._branch(rec)

    def delete_branch(self, branch: DbBranch) -> None:
        cluster = self.store.cluster(branch.id)
        rec = self._deletable_record(branch)
        if rec is None:
            for tomb in self.store.tombstones(self.ctx.repo_id):
                if tomb.name.startswith(branch.id + REMOVING):
                    self.store.finish_removal(tomb)  # an interrupted removal of this very cluster
            return  # already gone
        self._destroy(cluster)

    def expect_deletable(self, branch: DbBranch) -> None:
        self._deletable_record(branch)

    def _deletable_record(self, branch: DbBranch) -> ClusterRecord | None:
        """The record of a cluster this repo's workspace owns (None: already gone), or the refusal."""
        cluster = self.store.cluster(branch.id)
        rec = cluster.record_or_none()
        if rec is None and (cluster.data / "PG_VERSION").exists():
            raise BackendError(
                f"the PostgreSQL cluster in {cluster.dir} has lost treefork's record of it; treefork will not remove "
                "what it cannot prove it made",
                hint=f"restore {cluster.record_file}, or stop it (pg_ctl -D {cluster.data} stop) and remove it yourself",
            )
        if rec is not None and (rec.repo_id != self.ctx.repo_id or rec.workspace in (ROOT, None)):
            raise BackendError(
                f"refusing to remove cluster {branch.id}: it is not a workspace of this repository",
                hint="treefork only removes the clusters it created for this repository's workspaces",
            )
        return rec

    def list_branches(self) -> list[DbBranch]:
        return [
            self._branch(rec)
            for _, rec in self.store.of_repo(self.ctx.repo_id)
            if rec.workspace != ROOT and rec.status == READY
        ]

    def connection(self, branch: DbBranch) -> Connection:
        _, rec = self._expect(branch.id)
        self._running(rec)
        if rec.id in self._role_unchecked:  # a fork's role is let in by a reload: its URL works once it is done
            self._wait_for_role(rec)
            self._role_unchecked.discard(rec.id)
            debug.mark("fork:role-admitted")
        info = self._role_conninfo(rec)
        url = (
            f"postgresql://{quote(rec.role, safe='')}:{quote(rec.role_password, safe='')}"
            f"@{info['host']}:{rec.port}/{quote(rec.dbname, safe='')}"
        )
        return Connection(url=url, direct_url=url)

    def clone_method(self) -> str:
        return self._root_record().method or "copy"

    def extra_disk_bytes(self, branches: Sequence[DbBranch]) -> dict[str, int | None]:
        out: dict[str, int | None] = dict.fromkeys((b.id for b in branches), None)
        present = [c for c in map(self.store.cluster, out) if c.record_or_none() is not None]
        if self._any_reflink():  # extents a fork shares with its parent are not its own: mapped file by file
            out.update({c.id: c.extra_disk_bytes() for c in present})
        else:
            sizes = diskuse.allocated_bytes([str(c.data) for c in present])
            out.update(zip((c.id for c in present), sizes, strict=True))
        return out

    def _any_reflink(self) -> bool:
        """Whether any of this repo's clusters was forked by reflink: where none was (ext4, tmpfs: every fork a
        copy), no extent can be shared, and the disk is counted from the listing without opening ~1,300 files
        a cluster for FIEMAP. Asked once per command."""
        if self._reflinked is None:
            self._reflinked = any(rec.method == fork.CLONE for _, rec in self.store.of_repo(self.ctx.repo_id))
        return self._reflinked

    def server_state(self, branch: DbBranch) -> str | None:
        cluster = self.store.cluster(branch.id)
        rec = cluster.record_or_none()
        if rec is None:
            return "missing"
        if cluster.postmaster_pid() is not None:
            return "running"
        return "port taken" if cluster.port_taken_or_none(rec) else "stopped"

    def leftovers(self) -> list[DbBranch]:
        found = [
            DbBranch(
                name=f"{rec.dbname}@{rec.port}",
                id=rec.id,
                workspace=rec.workspace,
                extra={"reason": f"half made by process {rec.pid}, which is gone (killed mid-fork)"},
            )
            for _, rec in self.store.abandoned(self.ctx.repo_id)
        ]
        for tomb in self.store.tombstones(self.ctx.repo_id):
            found.append(
                DbBranch(
                    name=tomb.name,
                    id=tomb.name,
                    workspace=None,
                    extra={"reason": "its removal was interrupted (killed mid-`rm` or mid-`gc`)"},
                )
            )
        return found

    def drop_leftover(self, leftover: DbBranch) -> bool:
        if REMOVING in leftover.id:
            tomb = self.store.dir / leftover.id
            if tomb not in self.store.tombstones(self.ctx.repo_id):
                return False
            self.store.finish_removal(tomb)
            return True
        return self.store.collect_abandoned(leftover.id)

    def drop_throwaway_repo(self) -> None:
        """Remove every cluster of this repo, the root included. Only `treefork demo` calls this."""
        for cluster, _ in list(self.store.of_repo(self.ctx.repo_id)):
            self._destroy(cluster)

    def watch(self, branch: DbBranch) -> Callable[[], str | None]:
        from treefork.backends.local import refusals

        cluster, rec = self._expect(branch.id)
        since = cluster.log_size()
        return lambda: refusals.explain(cluster.log, since, rec.binaries())

    def health(self) -> list[Health]:
        from treefork.backends.local import health

        return health.checks(self.store, self.ctx, make_extensions=self.make_extensions)

    def make_extensions(self) -> ExtensionsMade:
        """treefork.toml's extensions, made as the admin wherever they are missing: the root and every
        workspace, each started if it is stopped (as any command that needs a cluster does). Recorded done once
        every cluster has them, so the next `sync` connects to none."""
        names = self.ctx.config.extensions
        clusters = admin_extensions.of_repo(self.store, self.ctx.repo_id)
        for bins in {rec.binaries() for _, _, rec in clusters}:  # one the binaries lack: nothing is made
            binaries.expect_extensions(bins, names, where="treefork.toml's extensions")
        outcome = ExtensionsMade()
        for who, _, rec in clusters:
            try:
                self._running(rec)
                outcome.made += [gap.made() for gap in admin_extensions.fill(rec, names, workspace=who)]
            except FatalError as e:  # its port taken, its binaries gone, an extension the binaries lack
                outcome.failed.append(f"{who}: {e}")
        if not outcome.failed:
            self.ctx.change_settings(
                lambda settings: settings.__setitem__(admin_extensions.DONE_KEY, admin_extensions.done_marker(names))
            )
        return outcome

    # ---- lifecycle (reset, diff, merge) ---------------------------------------------------------
    def reset_branch(self, branch: DbBranch, *, source: DbBranch) -> DbBranch:
        """Re-fork from source into the same cluster directory: same port, same passwords.

        Crash-safe: the copy is made, started and re-keyed to the branch's own passwords in a staging cluster
        (`<id>.reset`, on a spare port) while the branch still serves its old data; only then is the branch
        stopped and its data directory swapped for the staged one (two renames). A kill at any step leaves
        either the old data or the new, both with the branch's own passwords; the next start of the cluster
        (Cluster.recover_swap) finishes or undoes the swap and removes the staging cluster."""
        cluster, rec = self._expect(branch.id)
        source_cluster, source_rec = self._expect(source.id)
        self._running(source_rec)
        cluster.recover_swap()
        staging, staging_rec = self._staging(rec)
        verifiers = fork.new_verifiers(staging_rec)
        try:
            with self._session(source_cluster, source_rec) as session:
                method = fork.online_copy(session, source_cluster, staging, label=f"treefork reset {rec.id}")
            debug.crash_point("reset:after-copy")
            with self._first_start(staging, staging_rec, password=source_rec.admin_password) as conn:
                # the branch's own passwords, before it holds this data
                fork.rekey(conn, staging, staging_rec, verifiers)
            staging.stop(mode="fast")
            debug.crash_point("reset:after-rekey")
            with interrupts.ignored():
                self._swap_in(cluster, rec, staging)
        finally:
            staging.destroy()
        rec.method, rec.parent, rec.least_privilege = method, source_rec.id, True
        cluster.save(rec)
        debug.crash_point("reset:after-swap")
        self._started.discard(rec.id)
        self._running(rec)
        self._wait_for_role(rec)
        return self._branch(rec)

    def _staging(self, rec: ClusterRecord) -> tuple[Cluster, ClusterRecord]:
        """A staging cluster beside rec's, recorded (unfinished, with this process's pid) before any file of it
        exists, on a port of its own, with rec's passwords to set."""
        from dataclasses import replace

        self.store.cluster(rec.id + STAGING).destroy()  # a dead reset's (recover_swap left a live one alone)
        staging_rec = replace(rec, id=rec.id + STAGING, status=CREATING, pid=os.getpid(), least_privilege=False)
        return self.store.register(staging_rec), staging_rec

    @staticmethod
    def _swap_in(cluster: Cluster, rec: ClusterRecord, staging: Cluster) -> None:
        """Stop the cluster and put the staged data directory in its place (under the cluster's lock, so no
        other command starts it on the old data meanwhile); signals wait until it is done."""
        with cluster.lock():
            cluster.stop(mode="fast")
            debug.crash_point("reset:after-stop")
            old = cluster.dir / OLD_DATA
            os.rename(cluster.data, old)
            debug.crash_point("reset:after-move-old")
            os.rename(staging.data, cluster.data)
            debug.crash_point("reset:after-move-new")
            import shutil

            shutil.rmtree(old, ignore_errors=True)
            cluster.start(rec)

    def schema_diff(self, branch: DbBranch, *, base: DbBranch) -> str:
        from treefork.backends import schema_diff

        return schema_diff.diff_urls(self._admin_url(branch), self._admin_url(base))

    def schema_url_or_none(self, branch: DbBranch) -> str | None:
        return self._admin_url(branch)

    def snapshot(self, branch: DbBranch, *, tag: str) -> DbBranch:
        _, rec = self._expect(branch.id)
        return self.create_branch(_snapshot_name(rec, tag), parent=branch, options=CreateOptions())

    def find_snapshot_or_none(self, branch: DbBranch, *, tag: str) -> DbBranch | None:
        _, rec = self._expect(branch.id)
        return self.find_branch_or_none(_snapshot_name(rec, tag))

    def restore(self, branch: DbBranch, *, snapshot: DbBranch) -> None:
        self.reset_branch(branch, source=snapshot)
        self.drop_snapshot(snapshot)

    def drop_snapshot(self, snapshot: DbBranch) -> None:
        cluster = self.store.cluster(snapshot.id)
        rec = cluster.record_or_none()
        if rec is not None and rec.repo_id == self.ctx.repo_id and "@snapshot-" in rec.workspace:
            self._destroy(cluster)

    def writes_so_far(self, branch: DbBranch) -> int | None:
        cluster, rec = self._expect(branch.id)
        self._running(rec)
        with cluster.admin(rec) as conn:
            row = conn.one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        return int(row[0]) if row and row[0] else None

    # ---- helpers ------------------------------------------------------------------------------
    def _binding(self, cid: str) -> str:
        """What binds a cluster to this repository's registry: an HMAC of its id under a key kept in the repo's
        secrets.json (0600), which a record planted in the home cannot carry."""
        import hashlib
        import hmac

        key = self.ctx.secret("cluster_binding_key", create=True)
        assert key is not None
        return hmac.new(key.encode(), cid.encode(), hashlib.sha256).hexdigest()

    def _bound(self, rec: ClusterRecord) -> bool:
        """rec was made by this repository's treefork (for adopting a finished cluster the registry does not name
        yet; what it names is bound by the registry itself)."""
        import hmac

        return (
            rec.repo_id == self.ctx.repo_id
            and rec.binding is not None
            and hmac.compare_digest(rec.binding, self._binding(rec.id))
        )

    def _repo_dir(self) -> Path:
        """The repository's git common dir, where its registry lives: what tells `server prune` it is gone."""
        return self.ctx.common_dir

    def _destroy(self, cluster: Cluster) -> None:
        """Stop and remove a cluster, which this command no longer counts as started."""
        self._started.discard(cluster.dir.name)
        cluster.destroy()

    def _root_record(self) -> ClusterRecord:
        _, rec = self._expect(cluster_id(self.ctx.repo_id, ROOT))
        return rec

    def _expect(self, cid: str) -> tuple[Cluster, ClusterRecord]:
        cluster = self.store.cluster(cid)
        rec = cluster.record_or_none()
        if rec is None or rec.repo_id != self.ctx.repo_id:
            raise BackendError(
                f"the PostgreSQL cluster {cid} is missing from {self.store.dir}",
                hint="`treefork doctor` shows what is left; `treefork gc` cleans up; re-create the workspace",
            )
        if rec.status != READY:
            raise BackendError(f"{describe(rec)} is not finished", hint="re-run the command that created it")
        return cluster, rec

    def _running(self, rec: ClusterRecord) -> None:
        if rec.id not in self._started:  # one this command just started and logged into is running
            self.store.cluster(rec.id).ensure_running(rec)

    def _branch(self, rec: ClusterRecord) -> DbBranch:
        return DbBranch(
            name=f"{rec.dbname}@{rec.port}",
            id=rec.id,
            workspace=rec.workspace,
            clone_method=rec.method,
            extra={"port": rec.port, "dbname": rec.dbname, "cluster": rec.id},
        )

    def _admin_url(self, branch: DbBranch) -> str:
        """treefork's admin on the workspace's database: pg_dump sees every object, whatever the role granted."""
        _, rec = self._expect(branch.id)
        self._running(rec)
        where = f"127.0.0.1:{rec.port}/{quote(rec.dbname, safe='')}?require_auth=scram-sha-256"  # never a password to a squatter
        return f"postgresql://{ADMIN_USER}:{quote(rec.admin_password, safe='')}@{where}"

    @staticmethod
    def _role_conninfo(rec: ClusterRecord) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": rec.port,
            "user": rec.role,
            "password": rec.role_password,
            "dbname": rec.dbname,
        }


def _checked(checking: Background[list[str]], again: Callable[[], list[str]]) -> list[str]:
    """The parent's freeze check, which ran beside the session's login (a connection to its app database, the
    session's is to `postgres`); again, now that the session is in, if the parent was not up for it."""
    try:
        return checking.result()
    except libpq.PgConnectError:
        return again()


def _kept(conn: libpq.Connection | None) -> libpq.Connection:
    assert conn is not None  # start(keep=True) returns the connection or raises
    return conn


def _snapshot_name(rec: ClusterRecord, tag: str) -> str:
    return f"{rec.workspace}@snapshot-{tag}"


def _home(ctx: BackendContext) -> Any:
    """Where this repository's clusters live, as recorded at init (a hook run without TREEFORK_HOME must not
    look elsewhere); a different TREEFORK_HOME set explicitly is refused."""
    from pathlib import Path

    from treefork import paths

    recorded = ctx.settings.get("home")
    if recorded is None:
        return paths.treefork_home()
    env = os.environ.get("TREEFORK_HOME")
    if env and Path(env).expanduser().absolute() != Path(recorded):
        raise FatalError(
            f"this repository's databases live in {recorded}, but TREEFORK_HOME is {env}",
            hint=f"unset TREEFORK_HOME, or set it to {recorded}",
        )
    return Path(recorded)
