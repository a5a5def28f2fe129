"""Gemini CLI, Codex and opencode themselves (their newest npm releases), offline: each makes its worktree with
git hooks off or skipped, and the integration `treefork install --<agent>` sets up provisions it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psycopg
import pytest

from agents_support import agent_bin, agent_env, install_all
from conftest import db_url, git, run_tf
from fake_anthropic import FakeAnthropic, text_reply
from testing.cli import ls
from testing.server import can_connect
from testing.waits import wait_until


@pytest.fixture(scope="module")
def agent_clis() -> dict:
    """The newest agent CLIs, each installed from npm once per version (cached outside HOME; agents_support)."""
    return install_all()


def _ready(repo: Path, path: Path) -> bool:
    rows = [r for r in ls(repo).values() if Path(r["path"]) == path]
    return bool(rows) and rows[0]["status"] == "ready" and (path / ".env").is_file()


def test_gemini_worktree_gets_its_database_from_session_start(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    gemini = agent_bin(agent_clis, "gemini")
    run_tf(tf_repo, "install", "--gemini")
    settings = (tf_repo / ".gemini" / "settings.json").read_text()
    assert sys.executable not in settings  # no machine path: the file may be committed
    home = tmp_path / "agent-home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"experimental": {"worktrees": True}, "security": {"auth": {"selectedType": "gemini-api-key"}}})
    )
    with FakeAnthropic(text_reply()) as fake:  # any local 404 ends gemini's first API call at once
        env = agent_env(
            home, GEMINI_API_KEY="dummy", GOOGLE_GEMINI_BASE_URL=fake.url, GEMINI_CLI_TRUST_WORKSPACE="true"
        )
        cp = subprocess.run(
            [str(gemini), "-w", "g1", "-p", "hi"], cwd=tf_repo, env=env, capture_output=True, text=True, timeout=180
        )
    wt = tf_repo / ".gemini" / "worktrees" / "g1"
    assert wt.is_dir(), cp.stderr[-2000:]
    row = ls(tf_repo)["worktree-g1"]
    assert row["status"] == "ready" and Path(row["path"]) == wt
    # nested in the main checkout, it has an env file of its own: dotenv never walks up to the main one
    url = db_url(wt)
    assert url != db_url(tf_repo) and can_connect(url)
    # Gemini never removes its worktrees; its docs' two commands drop the database through the git hook
    git(tf_repo, "worktree", "remove", "--force", str(wt))
    git(tf_repo, "branch", "-D", "worktree-g1")
    assert "worktree-g1" not in ls(tf_repo) and not can_connect(url)


def test_codex_detached_worktree_gets_its_database_from_session_start(
    agent_clis: dict, tf_repo: Path, tmp_path: Path
) -> None:
    codex = agent_bin(agent_clis, "codex")
    home = tmp_path / "agent-home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    path_env = f"{codex.parent}{os.pathsep}{os.environ['PATH']}"
    done = json.loads(
        run_tf(
            tf_repo,
            "install",
            "--codex",
            "--json",
            env={"CODEX_HOME": str(codex_home), "HOME": str(home), "PATH": path_env},
        ).out
    )
    assert "treefork/agent-hook" in (codex_home / "hooks.json").read_text()
    trusted = {"hook": "codex hook trust", "path": str(codex_home / "hooks.json"), "action": "trusted"}
    assert {**trusted, "schema_version": 2} in done  # an install-action record (docs/json.md)
    env = agent_env(home, CODEX_HOME=str(codex_home), OPENAI_API_KEY="dummy")
    out = tmp_path / "codex.out"
    with out.open("w") as f:
        proc = subprocess.Popen(
            [str(codex), "exec", "--worktree", "--skip-git-repo-check", "hi"],
            cwd=tf_repo, env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: "SessionStart Completed" in out.read_text(),
            "codex's SessionStart hook",
            timeout=120,
            interval=0.3,
            process=proc,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    trees = [Path(p) for p in (codex_home / "worktrees").glob("*/app")]
    assert len(trees) == 1, out.read_text()[-2000:]
    wt = trees[0]
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip() == "HEAD"  # detached
    rows = {n: r for n, r in ls(tf_repo).items() if r["path"] == str(wt)}
    assert list(rows) == [f"{wt.parent.name}/app"]  # named from its directory (docs/agents.md)
    assert rows[f"{wt.parent.name}/app"]["status"] == "ready"
    url = db_url(wt)
    assert url != db_url(tf_repo) and can_connect(url)
    run_tf(tf_repo, "rm", f"{wt.parent.name}/app")  # Codex's own cleanup refuses ignored files: rm does it
    assert not wt.exists() and not can_connect(url) and f"{wt.parent.name}/app" not in ls(tf_repo)


def _http(url: str, method: str = "GET", body: dict | None = None, *, timeout: float = 60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def test_opencode_create_reset_remove(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    opencode = agent_bin(agent_clis, "opencode")
    home = tmp_path / "agent-home"
    home.mkdir()
    path_env = f"{opencode.parent}{os.pathsep}{os.environ['PATH']}"
    run_tf(tf_repo, "install", "--opencode", env={"HOME": str(home), "PATH": path_env})
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(opencode), "serve", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=tf_repo, env=agent_env(home, PATH=path_env), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    q = f"?directory={urllib.request.quote(str(tf_repo))}"
    try:
        wait_until(
            lambda: _up(f"{base}/project/current{q}"), "opencode serve", timeout=120, interval=0.3, process=server
        )
        made = _http(f"{base}/experimental/worktree{q}", "POST", {})
        wt = Path(made["directory"])
        wait_until(
            lambda: _ready(tf_repo, wt), "the start command provisioning the worktree", timeout=120, interval=0.3
        )
        assert ls(tf_repo)[made["branch"]]["status"] == "ready"
        url = db_url(wt)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (7)")

        _http(f"{base}/experimental/worktree/reset{q}", "POST", {"directory": str(wt)})  # git clean -ffdx
        wait_until(lambda: (wt / ".env").is_file(), "the env file coming back after reset", timeout=120, interval=0.3)
        assert db_url(wt) == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]

        _http(f"{base}/experimental/worktree{q}", "DELETE", {"directory": str(wt)})
        assert not wt.exists() and made["branch"] not in ls(tf_repo)
        assert not can_connect(url)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    run_tf(tf_repo, "uninstall", "--opencode", env={"HOME": str(home), "PATH": path_env})


def _up(url: str) -> bool:
    try:
        _http(url, timeout=3)  # a request that arrives while opencode boots can hang: retry instead
        return True
    except OSError:
        return False
