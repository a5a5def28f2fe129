"""Agents in tmux (`new --agent`, profiles, `ls` agent state) and the upgraded `ls`."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import git, run_tf
from tf_helpers import ls

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt package: tmux)")


@pytest.fixture
def tmux_env(tmp_path: Path):
    """A tmux server of the test's own (TMUX_TMPDIR), killed at the end."""
    sock_dir = tmp_path / "tmux"
    sock_dir.mkdir()
    env = {"TMUX_TMPDIR": str(sock_dir)}
    saved = os.environ.get("TMUX_TMPDIR")
    os.environ["TMUX_TMPDIR"] = str(sock_dir)
    yield env
    import subprocess

    subprocess.run(["tmux", "kill-server"], capture_output=True, env={**os.environ, **env})
    if saved is None:
        os.environ.pop("TMUX_TMPDIR", None)
    else:
        os.environ["TMUX_TMPDIR"] = saved


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


AGENT = "import os, sys, time, pathlib; pathlib.Path(sys.argv[1]).write_text(os.environ['DATABASE_URL'] + '|' + sys.argv[2]); time.sleep(float(sys.argv[2]))"


@needs_tmux
def test_agent_runs_in_tmux_with_the_env_and_ls_shows_it(tf_server_repo: Path, tmux_env, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    profile = f"agents = {{ fake = {json.dumps([sys.executable, '-c', AGENT, str(seen)])} }}\n"
    (tf_server_repo / "treefork.toml").write_text(profile)
    git(tf_server_repo, "add", ".")
    git(tf_server_repo, "commit", "-q", "-m", "agents")
    run_tf(tf_server_repo, "new", "a", "--agent", "fake", "--prompt", "30", env=tmux_env)
    _wait_for(seen)
    url, prompt = seen.read_text().split("|")
    assert url == run_tf(tf_server_repo, "url", "a").out.strip() and prompt == "30"
    assert ls(tf_server_repo)["a"]["agent"] == "running"
    run_tf(tf_server_repo, "rm", "a", "--force", env=tmux_env)  # the agent goes with its worktree
    import subprocess

    assert (
        subprocess.run(["tmux", "has-session", "-t", f"={tf_server_repo.name}/a"], capture_output=True).returncode != 0
    )


@needs_tmux
def test_agent_that_exits_shows_exited(tf_server_repo: Path, tmux_env, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    command = " ".join([sys.executable, "-c", json.dumps(AGENT), str(seen)])
    run_tf(tf_server_repo, "new", "a", "--agent", command, "--prompt", "0", env=tmux_env)
    _wait_for(seen)
    deadline = time.monotonic() + 60
    while ls(tf_server_repo)["a"]["agent"] != "exited":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_without_tmux_the_workspace_is_still_made(tf_server_repo: Path, tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    for tool in ("git",):
        (bare_path / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    r = run_tf(tf_server_repo, "new", "a", "--agent", "claude", env={"PATH": str(bare_path)})
    assert "tmux is not installed" in r.err and "agent was not started" in r.err
    row = ls(tf_server_repo)["a"]
    assert row["status"] == "ready" and Path(row["path"]).is_dir()


def test_ls_fields_and_details(tf_repo: Path) -> None:
    a = Path(json.loads(run_tf(tf_repo, "new", "a", "--json").out)["path"])
    (a / "f.txt").write_text("x\n")
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "f")
    (a / "dirt.txt").write_text("y\n")
    rows = json.loads(run_tf(tf_repo, "ls", "--json").out)
    from treefork.listing import FIELDS

    assert all(set(r) == set(FIELDS) for r in rows)
    row = {r["name"]: r for r in rows}["a"]
    assert (row["ahead"], row["behind"], row["dirty"]) == (1, 0, True)
    assert row["server"].startswith("127.0.0.1:") and row["disk_bytes"] > 0
    assert "pw" not in json.dumps(rows) and "@" not in row["server"]
    details = run_tf(tf_repo, "ls", "a").out
    assert "ahead:" in details and "dirty:         True" in details
    assert json.loads(run_tf(tf_repo, "ls", "a", "--json").out)["name"] == "a"
    table = run_tf(tf_repo, "ls").out
    assert all(len(line) <= 400 for line in table.splitlines()) and len(table.splitlines()) == 4


def test_attach_without_a_session_says_so(tf_server_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_server_repo, "new", "a")
    r = run_tf(tf_server_repo, "attach", "a", env={"TMUX_TMPDIR": str(tmp_path)}, check=False)
    assert r.rc == 1 and ("no agent session" in r.err or "tmux is not installed" in r.err)


def test_a_narrow_terminal_drops_the_optional_columns_first(monkeypatch) -> None:
    from treefork import output

    monkeypatch.setenv("COLUMNS", "36")
    output._console.cache_clear()
    try:
        columns, rows = output._drop_columns(
            ["name", "branch", "tree", "disk", "server"],
            [["a", "a", "clean", "12.0K", "127.0.0.1:5432"]],
            ["disk", "server"],
        )
    finally:
        output._console.cache_clear()
    assert columns == ["name", "branch", "tree", "server"] and rows == [["a", "a", "clean", "127.0.0.1:5432"]]
