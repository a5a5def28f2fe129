"""opencode (and Kilo, its fork, with the same server API): its worktrees (`/experimental/worktree`) are made with `--no-checkout`, so post-checkout never
fires, and its reset runs `git clean -ffdx`, deleting the env file. Both then run the project's start
command in the worktree: install sets that to the launcher (agents/launcher.py), through a short-lived
`opencode serve` on 127.0.0.1 (the setting lives in opencode's own data, never in the repository).
Removal (`worktree remove --force` + `branch -D`) is caught by the reference-transaction git hook.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from treefork import proc
from treefork.agents import launcher
from treefork.errors import FatalError
from treefork.git import Repo

PACKAGES = {"opencode": "opencode-ai", "kilo": "@kilocode/cli"}


def _executable(name: str = "opencode") -> str:
    exe = shutil.which(name)
    if exe is None:
        raise FatalError(f"{name} is not on PATH", hint=f"install it (npm install -g {PACKAGES[name]}), then run again")
    return exe


def preflight(repo: Repo) -> None:
    _executable()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _call(url: str, method: str = "GET", body: Any = None, *, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def set_start_command(root: Path, command: str | None, *, executable: str = "opencode") -> None:
    """PATCH the project's start command through a temporary `<executable> serve` (its own process group)."""
    port = _free_port()
    server = proc.spawn_detached(
        _executable(executable), "serve", "--hostname", "127.0.0.1", "--port", str(port), cwd=root
    )
    base = f"http://127.0.0.1:{port}"
    query = f"?directory={urllib.parse.quote(str(root))}"
    try:
        # a request that arrives while the server boots can hang: probe with a short timeout, and retry
        project = _wait_for(lambda: _call(f"{base}/project/current{query}", timeout=3), server)
        _call(f"{base}/project/{project['id']}{query}", "PATCH", {"commands": {"start": command or ""}})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for(call: Any, server: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            return call()
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise FatalError(
                    "`opencode serve` did not answer on 127.0.0.1",
                    hint="check that `opencode serve` starts here, then run again",
                ) from None
            time.sleep(0.2)


def _mark(repo: Repo, executable: str = "opencode") -> Path:
    return repo.common_dir / "treefork" / f"{executable}-start-command"


def install(repo: Repo, executable: str = "opencode") -> list[dict[str, str]]:
    wrote = launcher.write(repo)
    set_start_command(repo.main_root, launcher.COMMAND, executable=executable)
    _mark(repo, executable).write_text(launcher.COMMAND + "\n", encoding="utf-8")
    return [
        {
            "hook": f"{executable} agent-hook",
            "path": str(launcher.path(repo)),
            "action": "installed" if wrote else "unchanged",
        },
        {"hook": f"{executable} start command", "path": f"{executable} project settings", "action": "installed"},
    ]


def uninstall(repo: Repo, executable: str = "opencode") -> list[dict[str, str]]:
    where = {"hook": f"{executable} start command", "path": f"{executable} project settings"}
    if not _mark(repo, executable).exists():
        return [{**where, "action": "not installed"}]
    set_start_command(repo.main_root, None, executable=executable)
    _mark(repo, executable).unlink()
    return [{**where, "action": "removed"}]


def installed(repo: Repo, executable: str = "opencode") -> bool:
    return _mark(repo, executable).exists()
