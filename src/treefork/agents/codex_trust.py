"""Codex runs a hook only once it is trusted, keyed to the hook's content. `treefork install --codex` is
the user's consent for our one hook, so it records that trust the way Codex's own `/hooks` screen does:
through `codex app-server` (JSON-RPC over stdio): `hooks/list` gives each hook's key and `currentHash`,
`config/batchWrite` stores `hooks.state."<key>".trusted_hash` in `$CODEX_HOME/config.toml`. treefork never
computes the hash. Without `codex` on PATH, install says how to trust it by hand (`/hooks`).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import IO, Any

from treefork import proc
from treefork.agents import launcher
from treefork.errors import FatalError

TIMEOUT = 60.0


def trust_ours(root: Path) -> str:
    """Trust treefork's SessionStart hook; returns what happened, for install's report."""
    exe = shutil.which("codex")
    if exe is None:
        return "written; trust it once in Codex (`/hooks`): codex is not on PATH here"
    server = proc.converse(exe, "app-server", cwd=root)  # a JSON-RPC conversation; killed if it stalls
    timer = threading.Timer(TIMEOUT, server.kill)
    timer.start()
    try:
        assert server.stdin is not None and server.stdout is not None
        rpc = _Rpc(server.stdin, server.stdout)
        rpc.call("initialize", {"clientInfo": {"name": "treefork", "version": "1"}})
        rpc.notify("initialized")
        listed = rpc.call("hooks/list", {"cwds": [str(root)]})
        ours = [
            h
            for group in listed.get("data", [])
            for h in group.get("hooks", [])
            if launcher.is_ours(h.get("command")) and h.get("eventName") == "sessionStart"
        ]
        if not ours:
            raise FatalError("Codex does not list treefork's SessionStart hook", hint="run `codex` and check `/hooks`")
        todo = {h["key"]: {"trusted_hash": h["currentHash"]} for h in ours if h.get("trustStatus") != "trusted"}
        if todo:
            edit = {"keyPath": "hooks.state", "mergeStrategy": "upsert", "value": todo}
            rpc.call("config/batchWrite", {"edits": [edit]})
        return "trusted" if todo else "already trusted"
    finally:
        timer.cancel()
        server.kill()
        server.wait()


class _Rpc:
    def __init__(self, out: IO[str], into: IO[str]) -> None:
        self.out, self.into, self.next_id = out, into, 0

    def notify(self, method: str) -> None:
        self.out.write(json.dumps({"method": method}) + "\n")
        self.out.flush()

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.out.write(json.dumps({"method": method, "id": self.next_id, "params": params}) + "\n")
        self.out.flush()
        for line in self.into:
            msg = json.loads(line)
            if msg.get("id") != self.next_id:
                continue  # a notification
            if "error" in msg:
                raise FatalError(
                    f"codex app-server refused {method}: {msg['error'].get('message')}",
                    hint="trust treefork's hook once in Codex (`/hooks`)",
                )
            return msg.get("result") or {}
        raise FatalError(
            f"codex app-server stopped before answering {method}", hint="trust the hook in Codex (`/hooks`)"
        )
