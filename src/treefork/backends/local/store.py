"""Every cluster treefork made on this machine, under one home: find, register, create from nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from treefork import paths, platform, procinfo
from treefork.backends.base import ROOT_MARK
from treefork.backends.local import ports
from treefork.backends.local.cluster import (
    ADMIN_USER,
    READY,
    REMOVING,
    Cluster,
    ClusterRecord,
    new_password,
)
from treefork.backends.local.home import check_home, make_subdir, open_home
from treefork.locks import FileLock
from treefork.names import _slug

ROOT = ROOT_MARK


def cluster_id(repo_id: str, workspace: str) -> str:
    """A cluster's directory name, derived from its owner: `<repo id>-root` or `<repo id>-<slug>-<hash>`."""
    if workspace == ROOT:
        return f"{repo_id}-root"
    digest = hashlib.sha256(workspace.encode()).hexdigest()[:8]
    return f"{repo_id}-{_slug(workspace)[:40] or 'ws'}-{digest}"


class ClusterStore:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home or paths.treefork_home()
        self.dir = self.home / "clusters"
        self._lock = FileLock(self.home / "clusters.lock", timeout=120, what="cluster registry")
        if self.home.exists():
            check_home(self.home)  # before anything in it is read

    def cluster(self, cid: str) -> Cluster:
        return Cluster(self.dir / cid)

    def all(self) -> Iterator[tuple[Cluster, ClusterRecord]]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for name in names:
            cluster = self.cluster(name)
            rec = cluster.record_or_none()
            if rec is not None and rec.id == name:
                yield cluster, rec

    def of_repo(self, repo_id: str) -> Iterator[tuple[Cluster, ClusterRecord]]:
        return ((c, r) for c, r in self.all() if r.repo_id == repo_id)

    # ---- registering a new cluster ----------------------------------------------------------------
    def register(self, rec: ClusterRecord) -> Cluster:
        """Record a cluster before any of its files exist (so a crash leaves something gc recognises),
        on a port no other recorded cluster has."""
        self.prepare_home()
        with self._lock.held():
            cluster = self.cluster(rec.id)
            rec.port = ports.pick((r.port for _, r in self.all()), owner=cluster.dir)
            cluster.dir.mkdir(mode=0o711, exist_ok=True)
            cluster.save(rec)
        return cluster

    @contextlib.contextmanager
    def creating(self, rec: ClusterRecord) -> Iterator[Cluster]:
        """Register rec, let the caller make the cluster, then record it finished; on any failure (^C
        included) every file of the half-made cluster goes."""
        cluster = self.register(rec)
        try:
            yield cluster
            rec.status, rec.pid = READY, None
            cluster.save(rec)
        except BaseException:
            cluster.destroy()
            raise

    def repick_port(self, cluster: Cluster, rec: ClusterRecord) -> None:
        """A new cluster lost its port to another program before its first start: no env file names it yet."""
        with self._lock.held():
            old = rec.port
            rec.port = ports.pick((r.port for _, r in self.all()), owner=cluster.dir)
            cluster.save(rec)
            ports.release(old, cluster.dir)

    # ---- what crashes leave -----------------------------------------------------------------------
    def abandoned(self, repo_id: str) -> list[tuple[Cluster, ClusterRecord]]:
        """This repo's clusters still being created by a process that is gone (killed mid-fork; its pid dead,
        or reused by another process since)."""
        return [(c, r) for c, r in self.of_repo(repo_id) if r.status != READY and not creator_alive(r)]

    def tombstones(self, repo_id: str) -> list[Path]:
        """This repo's cluster directories whose removal was interrupted (Cluster.destroy renames them first)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(self.dir / n for n in names if n.startswith(f"{repo_id}-") and REMOVING in n)

    def collect_abandoned(self, cid: str) -> bool:
        """Stop and remove cluster cid if it is still abandoned: re-checked under the registry's lock, which a
        `new` re-creating it takes to register it again."""
        with self._lock.held():
            cluster = self.cluster(cid)
            rec = cluster.record_or_none()
            if rec is None or rec.id != cid or rec.status == READY or creator_alive(rec):
                return False
            cluster.destroy()
            return True

    def finish_removal(self, tomb: Path) -> None:
        """Finish an interrupted removal: its postmaster (if it still runs there) stopped, its files gone."""
        if tomb.parent != self.dir or REMOVING not in tomb.name:
            return
        Cluster(tomb).stop(mode="immediate")
        shutil.rmtree(tomb, ignore_errors=True)

    def prepare_home(self) -> None:
        open_home(self.home)
        make_subdir(self.home, "clusters", mode=0o711 if paths.is_root() else 0o700)

    # ---- a root from nothing --------------------------------------------------------------------
    def initdb(self, cluster: Cluster, rec: ClusterRecord, *, extensions: tuple[str, ...] = ()) -> None:
        """An empty cluster: the admin, the workspace role (not a superuser: privileges.py) and its database
        (owned by the role), with treefork.toml's extensions made by the admin (in template1 too, so a database
        the role makes has them: admin_extensions.py). A copy of the pristine one
        (initdb's output, made once), whose admin password is replaced first, the pristine one's forgotten."""
        from treefork.backends.local import admin_extensions, pristine, privileges
        from treefork.backends.local.fork import set_password
        from treefork.backends.local.libpq import SQL, Ident

        data, pristine_password = pristine.empty_data_dir(self.home, rec.binaries())
        pristine.copy_into(data, cluster.data)
        conn = cluster.start(rec, password=pristine_password, keep=True)
        assert conn is not None
        with conn:
            set_password(conn, ADMIN_USER, rec.admin_password)
            privileges.create_role(conn, rec.role, privileges.scram_verifier(rec.role_password))
            privileges.forget_old_passwords(conn)  # the pristine cluster's admin verifier
            # FILE_COPY copies template1's files (a checkpoint before and after, trivial in a new cluster); the
            # default WAL_LOG writes template1 into the WAL and shared buffers. As much CPU on ext4, half on tmpfs,
            # and 4 MB less WAL (bench/bench_init.py, docs/benchmarks.md).
            admin_extensions.in_template1(rec, extensions)  # the database is a copy of template1
            conn.execute(SQL.of("CREATE DATABASE {} OWNER {} STRATEGY FILE_COPY", Ident(rec.dbname), Ident(rec.role)))
            conn.execute(SQL.of("REVOKE ALL ON DATABASE {} FROM PUBLIC", Ident(rec.dbname)))
        rec.status = READY
        rec.least_privilege = True


def new_record(
    repo_id: str,
    workspace: str,
    *,
    dbname: str,
    role: str,
    parent: str | None,
    repo_dir: Path | None = None,
    runs_on: ClusterRecord | None = None,
) -> ClusterRecord:
    """runs_on: the record whose PostgreSQL binaries the new cluster uses (a fork's parent's)."""
    return ClusterRecord(
        id=cluster_id(repo_id, workspace),
        repo_id=repo_id,
        workspace=workspace,
        port=0,
        dbname=dbname,
        role=role,
        admin_password=new_password(),
        role_password=new_password(),
        parent=parent,
        pid=os.getpid(),
        pid_started=platform.process_start_time(os.getpid()),
        repo_dir=str(repo_dir) if repo_dir is not None else None,
        pg_bin=runs_on.pg_bin if runs_on is not None else None,
        pg_version=runs_on.pg_version if runs_on is not None else None,
    )


def creator_alive(rec: ClusterRecord) -> bool:
    """The process creating rec is still at it (this one included)."""
    return rec.pid == os.getpid() or procinfo.same_process(rec.pid, rec.pid_started)


# What became of a cluster's repository (`treefork server prune`, `server start`)
PRESENT, GONE, REINITIALISED, UNKNOWN = "present", "gone", "re-initialised", "unknown"


def repository_state(rec: ClusterRecord) -> str:
    """present: the repository still has this cluster's treefork id; gone: its git directory, or treefork's
    registry in it, is no more; re-initialised: its registry has another id now (`treefork init` again);
    unknown: the record does not say where its repository is (an older treefork), or it cannot be read."""
    if not rec.repo_dir:
        return UNKNOWN
    common = Path(rec.repo_dir)
    try:
        data = json.loads((common / "treefork" / "registry.json").read_text())
    except FileNotFoundError:
        return GONE
    except (OSError, ValueError):
        return UNKNOWN
    repo_id = data.get("repo_id") if isinstance(data, dict) else None
    if not repo_id:
        return UNKNOWN  # an init still writing it
    return PRESENT if repo_id == rec.repo_id else REINITIALISED
