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
from pathlib import Path
from typing import Any
from urllib.parse import quote

from treefork.backends.base import BackendContext, Connection, CreateOptions, DbBranch
from treefork.backends.local import fork, libpq
from treefork.backends.local.cluster import ADMIN_USER, READY, Cluster, ClusterRecord, describe, record_json
from treefork.backends.local.store import ROOT, ClusterStore, cluster_id, new_record
from treefork.errors import BackendError, FatalError

ROLE_WAIT = 5.0


class ClusterBackend:
    name = "local"

    def __init__(self, ctx: BackendContext) -> None:
        self.ctx = ctx
        self.store = ClusterStore(_home(ctx))
        self._started: set[str] = set()

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
        rec = new_record(self.ctx.repo_id, ROOT, dbname=dbname, role="app", parent=None, repo_dir=self._repo_dir())
        with self.store.creating(rec) as cluster:
            self.store.initdb(cluster, rec)
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
        )
        self._clear_leftover(rec.id, workspace)
        from treefork.backends.local.importer import freeze

        with self._session(parent_cluster, parent_rec) as session:
            if frozen := freeze(parent_cluster, parent_rec, only_if_needed=True):
                self.ctx.progress(f"froze {', '.join(frozen)} in the parent first, so the fork stays copy-on-write")
            with self.store.creating(rec) as child:
                rec.method = fork.online_copy(session, parent_cluster, child, label=f"treefork fork {rec.id}")
                session.close()  # the parent is no longer needed: its backup has ended
                with self._first_start(child, rec, password=parent_rec.admin_password) as conn:
                    fork.rekey(conn, child, rec)
                self._wait_for_role(rec)
        self._started.add(rec.id)
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
        from treefork.state import pid_alive

        if pid_alive(old.pid) and old.pid != os.getpid():
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
        workspace's own credentials work before any env file names them)."""
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
            from treefork.state import pid_alive

            if rec.pid != os.getpid() and not pid_alive(rec.pid):
                cluster.destroy()  # a killed fork: nothing names it yet
            return None
        return self._branch(rec)

    def delete_branch(self, branch: DbBranch) -> None:
        cluster = self.store.cluster(branch.id)
        rec = cluster.record_or_none()
        if rec is None and (cluster.data / "PG_VERSION").exists():
            raise BackendError(
                f"the PostgreSQL cluster in {cluster.dir} has lost treefork's record of it; treefork will not remove "
                "what it cannot prove it made",
                hint=f"restore {cluster.record_file}, or stop it (pg_ctl -D {cluster.data} stop) and remove it yourself",
            )
        if rec is None:
            return  # already gone
        if rec.repo_id != self.ctx.repo_id or rec.workspace in (ROOT, None):
            raise BackendError(
                f"refusing to remove cluster {branch.id}: it is not a workspace of this repository",
                hint="treefork only removes the clusters it created for this repository's workspaces",
            )
        self._destroy(cluster)

    def list_branches(self) -> list[DbBranch]:
        return [
            self._branch(rec)
            for _, rec in self.store.of_repo(self.ctx.repo_id)
            if rec.workspace != ROOT and rec.status == READY
        ]

    def connection(self, branch: DbBranch) -> Connection:
        _, rec = self._expect(branch.id)
        self._running(rec)
        info = self._role_conninfo(rec)
        url = (
            f"postgresql://{quote(rec.role, safe='')}:{quote(rec.role_password, safe='')}"
            f"@{info['host']}:{rec.port}/{quote(rec.dbname, safe='')}"
        )
        return Connection(url=url, direct_url=url)

    def clone_method(self) -> str:
        return self._root_record().method or "copy"

    def status(self) -> dict[str, Any]:
        rows = []
        for cluster, rec in self.store.of_repo(self.ctx.repo_id):
            pid = cluster.postmaster_pid()
            rows.append({**record_json(rec), "running": pid is not None, "pid": pid, "data_dir": str(cluster.data)})
        return {"backend": "local", "server": "embedded", "home": str(self.store.home), "clusters": rows}

    def extra_disk_bytes(self, branch: DbBranch) -> int | None:
        cluster = self.store.cluster(branch.id)
        return cluster.extra_disk_bytes() if cluster.record_or_none() is not None else None

    def server_state(self, branch: DbBranch) -> str | None:
        cluster = self.store.cluster(branch.id)
        if cluster.record_or_none() is None:
            return "missing"
        return "running" if cluster.postmaster_pid() is not None else "stopped"

    def drop_throwaway_repo(self) -> None:
        """Remove every cluster of this repo, the root included. Only `treefork demo` calls this."""
        for cluster, _ in list(self.store.of_repo(self.ctx.repo_id)):
            self._destroy(cluster)

    def private_settings_problems(self) -> list[str]:
        """Each running cluster of this repository whose live listen_addresses, port, hba_file, … are not
        treefork's (`treefork doctor`): what a cluster started by hand, or by an older treefork, may have."""
        problems = []
        for cluster, rec in self.store.of_repo(self.ctx.repo_id):
            if rec.status != READY or cluster.postmaster_pid() is None:
                continue
            try:
                with cluster.admin(rec, timeout=3) as conn:
                    for name, want in cluster.private_settings(rec).items():
                        row = conn.one("SELECT current_setting($1)", (name,))
                        if row is None or row[0] != want:
                            problems.append(f"{describe(rec)} runs with {name} = {row[0] if row else None!r}")
            except libpq.PgConnectError:
                continue  # the connections check reports it
        return problems

    # ---- lifecycle (reset, diff, merge) ---------------------------------------------------------
    def reset_branch(self, branch: DbBranch, *, source: DbBranch) -> DbBranch:
        """Re-fork from source into the same cluster directory: same port, same passwords."""
        cluster, rec = self._expect(branch.id)
        source_cluster, source_rec = self._expect(source.id)
        self._running(source_rec)
        staging = self.store.cluster(rec.id + ".reset")
        staging.destroy()
        staging.dir.mkdir(mode=0o711)
        try:
            with self._session(source_cluster, source_rec) as session:
                method = fork.online_copy(session, source_cluster, staging, label=f"treefork reset {rec.id}")
            cluster.stop(mode="fast")
            _swap_data(cluster, staging)
        finally:
            staging.destroy()
        rec.method, rec.parent = method, source_rec.id
        cluster.save(rec)
        with _kept(cluster.start(rec, admin_only=True, password=source_rec.admin_password, keep=True)) as conn:
            fork.rekey(conn, cluster, rec)
        cluster.save(rec)
        self._wait_for_role(rec)
        return self._branch(rec)

    def schema_diff(self, branch: DbBranch, *, base: DbBranch) -> str:
        from treefork.backends import schema_diff

        return schema_diff.diff_urls(self._admin_url(branch), self._admin_url(base))

    def snapshot(self, branch: DbBranch) -> DbBranch:
        _, rec = self._expect(branch.id)
        snap_name = f"{rec.workspace}@snapshot-{int(time.time() * 1000)}"
        return self.create_branch(snap_name, parent=branch, options=CreateOptions())

    def restore(self, branch: DbBranch, *, snapshot: DbBranch) -> None:
        self.reset_branch(branch, source=snapshot)
        self.drop_snapshot(snapshot)

    def drop_snapshot(self, snapshot: DbBranch) -> None:
        cluster = self.store.cluster(snapshot.id)
        rec = cluster.record_or_none()
        if rec is not None and rec.repo_id == self.ctx.repo_id and "@snapshot-" in rec.workspace:
            self._destroy(cluster)

    # ---- helpers ------------------------------------------------------------------------------
    def _repo_dir(self) -> Path:
        """The repository's git common dir, where its registry lives: what tells `server prune` it is gone."""
        return self.ctx.registry.dir.parent

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
        return f"postgresql://{ADMIN_USER}:{quote(rec.admin_password, safe='')}@127.0.0.1:{rec.port}/{quote(rec.dbname, safe='')}"

    @staticmethod
    def _role_conninfo(rec: ClusterRecord) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": rec.port,
            "user": rec.role,
            "password": rec.role_password,
            "dbname": rec.dbname,
        }


def _kept(conn: libpq.Connection | None) -> libpq.Connection:
    assert conn is not None  # start(keep=True) returns the connection or raises
    return conn


def _swap_data(cluster: Cluster, staging: Cluster) -> None:
    old = cluster.dir / "data.old"
    os.rename(cluster.data, old)
    os.rename(staging.data, cluster.data)
    import shutil

    shutil.rmtree(old, ignore_errors=True)


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
