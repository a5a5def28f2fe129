"""`treefork server status|start|stop|autostart`: every PostgreSQL cluster treefork runs on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from treefork import output, selfcmd
from treefork.backends.local.cluster import READY, record_json
from treefork.backends.local.store import ClusterStore
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text

SYSTEMD_RUNNING = Path("/run/systemd/system")  # what sd_booted(3) checks: systemd is this machine's init


def run(action: str, *, as_json: bool, force: bool = False) -> int:
    store = ClusterStore()
    if action == "autostart":
        return _autostart(as_json=as_json, force=force)
    failed = []
    for cluster, rec in store.all():
        if action == "start" and rec.status == READY:
            try:
                cluster.ensure_running(rec)
            except Exception as e:  # one broken cluster must not keep the others down
                failed.append(f"{rec.id}: {e}")
        elif action == "stop":
            cluster.stop()
    rows = [_row(cluster, rec) for cluster, rec in store.all()]
    if as_json:
        output.emit_json({"home": str(store.home), "clusters": rows})
    else:
        _show(rows, store.home)
    for line in failed:
        output.warn(f"could not start {line}")
    return 1 if failed else 0


def _row(cluster: Any, rec: Any) -> dict[str, Any]:
    pid = cluster.postmaster_pid()
    return {
        **record_json(rec),
        "running": pid is not None,
        "pid": pid,
        "data_dir": str(cluster.data),
        "log_file": str(cluster.log),
    }


def _show(rows: list[dict[str, Any]], home: Path) -> None:
    if not rows:
        output.info(f"no PostgreSQL clusters in {home} (`treefork init` makes the first)")
        return
    output.table(
        ["cluster", "workspace", "port", "state", "pid", "method"],
        (
            [
                r["id"],
                "root" if r["workspace"] == "<root>" else r["workspace"],
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
        output.emit_json({"unit": str(unit)})
    else:
        output.info(f"wrote {unit}")
        output.info("enable it with: systemctl --user daemon-reload && systemctl --user enable --now treefork")
    return 0
