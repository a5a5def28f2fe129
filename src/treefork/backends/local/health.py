"""The local backend's own `treefork doctor` checks (Backend.health): the PostgreSQL each cluster runs on (the
wheel's, or the machine's own: binaries.py) and a warning when those binaries are gone; each running cluster's
private settings (loopback only, treefork's port and pg_hba.conf, whatever an ALTER SYSTEM asked for); and
treefork.toml's extensions in each running cluster (admin_extensions.py), which `--fix` makes. A stopped cluster
is never started to be looked at."""

from __future__ import annotations

from collections.abc import Callable

from treefork.backends.base import FAIL, OK, WARN, BackendContext, Health
from treefork.backends.local import admin_extensions, binaries, libpq
from treefork.backends.local.cluster import READY, describe
from treefork.backends.local.store import ROOT, ClusterStore


def checks(store: ClusterStore, ctx: BackendContext, *, make_extensions: Callable[[], object]) -> list[Health]:
    return [
        *_binaries(store, ctx.repo_id),
        _private_settings(store, ctx.repo_id),
        _extensions(store, ctx, make_extensions),
    ]


def _binaries(store: ClusterStore, repo_id: str) -> list[Health]:
    used: dict[binaries.Binaries, list[str]] = {}
    for _, rec in store.of_repo(repo_id):
        used.setdefault(rec.binaries(), []).append("root" if rec.workspace == ROOT else rec.workspace)
    out = []
    for bins, workspaces in sorted(used.items(), key=lambda item: item[0].label()):
        who = sorted(workspaces)
        if bins.present():
            out.append(Health("postgres binaries", OK, f"{bins.label()}: {', '.join(who)}", None, who))
        else:
            hint = f"reinstall PostgreSQL {bins.major} there (e.g. apt install postgresql-{bins.major})"
            out.append(
                Health("postgres binaries", WARN, f"{bins.label()} is gone: {', '.join(who)} will not start", hint, who)
            )
    return out


def _private_settings(store: ClusterStore, repo_id: str) -> Health:
    """Each running cluster whose live listen_addresses, port, hba_file, … are not treefork's: what a cluster
    started by hand, or by an older treefork, may have."""
    problems = []
    for cluster, rec in store.of_repo(repo_id):
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
    if problems:
        hint = "treefork server stop && treefork server start (treefork passes its settings on the command line)"
        return Health("cluster settings", FAIL, "; ".join(problems), hint)
    return Health("cluster settings", OK, "every running cluster: loopback only, treefork's port and pg_hba.conf")


def _extensions(store: ClusterStore, ctx: BackendContext, make: Callable[[], object]) -> Health:
    names = ctx.config.extensions
    gaps: list[admin_extensions.Gap] = []
    for who, cluster, rec in admin_extensions.of_repo(store, ctx.repo_id):
        if admin_extensions.running(cluster):
            gaps += admin_extensions.gaps(rec, names, workspace=who)
    if not gaps:
        return Health("extensions", OK, f"{', '.join(names) or 'none listed'}: in every running cluster")
    message = "; ".join(gap.describe() for gap in gaps)
    return Health("extensions", FAIL, message, "treefork sync", [gap.place() for gap in gaps], fix=make)
