"""`treefork server status|start|stop`: the embedded PostgreSQL server, machine-wide."""

from __future__ import annotations

from treefork import output
from treefork.backends.pgserver import EmbeddedServer


def run(action: str, *, as_json: bool) -> int:
    server = EmbeddedServer()
    if action == "start":
        server.ensure_running()
    elif action == "stop":
        stopped = server.stop()
        if not as_json:
            output.info("server stopped" if stopped else "server was not running")
    status = server.status()
    if as_json:
        output.emit_json(status)
    elif action != "stop":
        state = "running" if status["running"] else "stopped"
        output.info(
            f"PostgreSQL {status['version']} {state} on {status['host']}:{status['port']} (pid {status['pid']}), "
            f"clone method {status['clone_method']}, run as {status['run_as'] or 'you'}"
        )
        output.info(f"data: {status['data_dir']}  log: {status['log_file']}")
    return 0
