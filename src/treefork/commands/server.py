"""`treefork server status|start|stop|prune|autostart`: every PostgreSQL cluster treefork runs on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from treefork import output, platform, selfcmd, shapes
from treefork.backends.local.cluster import READY, Cluster, ClusterRecord
from treefork.backends.local.store import (
    GONE,
    PRESENT,
    REINITIALISED,
    ROOT,
    UNKNOWN,
    ClusterStore,
    repository_state,
)
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text

SYSTEMD_RUNNING = Path("/run/systemd/system")  # what sd_booted(3) checks: systemd is this machine's init


def run(action: str, *, as_json: bool, force: bool = False) -> int:
    store = ClusterStore()
    if action == "autostart":
        return _autostart(as_json=as_json, force=force)
    failed = []
    for cluster, rec in store.all():
        if action == "start" and rec.status == READY and repository_state(rec) in (PRESENT, UNKNOWN):
            try:
                cluster.ensure_running(rec)
            except Exception as e:  # one broken cluster must not keep the others down
                failed.append(f"{rec.id}: {e}")
        elif action == "stop":
            cluster.stop()
    rows = _rows(store)
    if as_json:
        output.emit_json(shapes.record("server status", {"home": str(store.home), "clusters": rows}))
    else:
        _show(rows, store.home)
    for line in failed:
        output.warn(f"could not start {line}")
    return 1 if failed else 0


def prune(*, dry_run: bool, force: bool, as_json: bool) -> int:
    """Remove the clusters whose repository is gone or was initialised again (and, with force, those whose
    record does not say where their repository is). Only clusters treefork recorded; never one being made."""
    store = ClusterStore()
    doomed = (REINITIALISED, GONE, UNKNOWN) if force else (REINITIALISED, GONE)
    removed, kept_unknown = [], []
    for cluster, rec in store.all():
        state = repository_state(rec)
        if rec.status != READY and platform.process_alive(rec.pid):
            continue  # a command is making it right now
        if state == UNKNOWN and not force:
            kept_unknown.append(rec)
        if state not in doomed:
            continue
        removed.append({**_row(cluster, rec, _names(store)), "repository": state})
        if not dry_run:
            cluster.destroy()
    if as_json:
        unknown = [r.id for r in kept_unknown]
        output.emit_json(
            shapes.record(
                "server prune", {"home": str(store.home), "dry_run": dry_run, "removed": removed, "unknown": unknown}
            )
        )
        return 0
    verb = "would remove" if dry_run else "removed"
    for r in removed:
        where = r["repo_dir"] or "an unrecorded place"
        output.info(
            f"{verb} {r['id']} ({_workspace(r)}, port {r['port']}): its repository {where} is {r['repository']}"
        )
    if not removed:
        output.info("no cluster whose repository is gone")
    if kept_unknown:
        output.info(
            f"kept {len(kept_unknown)} cluster(s) an older treefork made, whose repository is not recorded: "
            + ", ".join(r.id for r in kept_unknown)
            + " (`treefork server prune --force` removes them too: check `treefork server status` first)"
        )
    return 0


def _workspace(row: dict[str, Any]) -> str:
    return "root" if row["name"] == "root" else f"workspace {row['name']}"


def _rows(store: ClusterStore) -> list[dict[str, Any]]:
    names = _names(store)
    return [_row(cluster, rec, names) for cluster, rec in store.all()]


def _names(store: ClusterStore) -> dict[str, str]:
    """Each cluster id's workspace, as `treefork ls` names it (`root` for a root)."""
    return {rec.id: "root" if rec.workspace == ROOT else rec.workspace for _, rec in store.all()}


def _row(cluster: Cluster, rec: ClusterRecord, names: dict[str, str]) -> dict[str, Any]:
    pid = cluster.postmaster_pid()
    return shapes.record(
        "cluster",
        {
            "id": rec.id,
            "repo_id": rec.repo_id,
            "repo_dir": rec.repo_dir,
            "name": names.get(rec.id, rec.workspace),
            "parent": names.get(rec.parent) if rec.parent else None,
            "port": rec.port,
            "dbname": rec.dbname,
            "role": rec.role,
            "method": rec.method,
            "status": rec.status,
            "created_at": shapes.when(rec.created_at),
            "running": pid is not None,
            "pid": pid,
            "data_dir": str(cluster.data),
            "log_file": str(cluster.log),
        },
    )


def _show(rows: list[dict[str, Any]], home: Path) -> None:
    if not rows:
        output.info(f"no PostgreSQL clusters in {home} (`treefork init` makes the first)")
        return
    output.table(
        ["cluster", "workspace", "port", "state", "pid", "method"],
        (
            [
                r["id"],
                r["name"],
                str(r["port"]),
                ("running" if r["running"] else "stopped") if r["status"] == READY else r["status"],
                str(r["pid"] or ""),
                r["method"] or "",
            ]
            for r in rows
        ),
    )


UNIT = """[Unit]
Description=treefork: start every PostgreSQL cluster of every workspace

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=TREEFORK_HOME={home}
ExecStart={start}
ExecStop={stop}

[Install]
WantedBy=default.target
"""


def _autostart(*, as_json: bool, force: bool) -> int:
    """A systemd user unit that starts every cluster at login (`systemctl --user enable --now treefork`)."""
    if not force and not SYSTEMD_RUNNING.is_dir():
        raise FatalError(
            "this machine does not run systemd, so a systemd unit would never start; nothing was written",
            hint="run `treefork server start` at login another way (your shell profile, or `@reboot` in crontab -e); "
            "`treefork server autostart --force` writes the unit anyway",
        )
    home = ClusterStore().home
    unit = Path.home() / ".config" / "systemd" / "user" / "treefork.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        unit,
        UNIT.format(home=home, start=selfcmd.shell("server", "start"), stop=selfcmd.shell("server", "stop")),
        mode=0o644,
    )
    if as_json:
        output.emit_json(shapes.record("autostart", {"unit": str(unit)}))
    else:
        output.info(f"wrote {unit}")
        output.info("enable it with: systemctl --user daemon-reload && systemctl --user enable --now treefork")
    return 0
