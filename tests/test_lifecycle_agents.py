"""Agents in tmux (`new --agent`, profiles, `ls` agent state) and the upgraded `ls`."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import as_sample_spells, git, run_tf
from testing.cli import ls, new
from testing.waits import wait_until

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


AGENT = "import os, sys, time, pathlib; pathlib.Path(sys.argv[1]).write_text(os.environ['DATABASE_URL'] + '|' + sys.argv[2]); time.sleep(float(sys.argv[2]))"


@needs_tmux
def test_agent_runs_in_tmux_with_the_env_and_ls_shows_it(tf_server_repo: Path, tmux_env, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    profile = f"agents = {{ fake = {json.dumps([sys.executable, '-c', AGENT, str(seen)])} }}\n"
    (tf_server_repo / "treefork.toml").write_text(profile)
    git(tf_server_repo, "add", ".")
    git(tf_server_repo, "commit", "-q", "-m", "agents")
    run_tf(tf_server_repo, "new", "a", "--agent", "fake", "--prompt", "30", env=tmux_env)
    wait_until(seen.exists, f"{seen} appearing")
    url, prompt = seen.read_text().split("|")
    assert url == as_sample_spells(run_tf(tf_server_repo, "url", "a").out.strip()) and prompt == "30"
    assert ls(tf_server_repo)["a"]["agent"] == "running"
    run_tf(tf_server_repo, "rm", "a", "--force", env=tmux_env)  # the agent goes with its worktree
    import subprocess

    listed = subprocess.run(["tmux", "ls", "-F", "#{session_name}"], capture_output=True, text=True).stdout
    assert not any(s.endswith("/a") for s in listed.split())


@needs_tmux
def test_agent_that_exits_shows_exited(tf_server_repo: Path, tmux_env, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    command = " ".join([sys.executable, "-c", json.dumps(AGENT), str(seen)])
    run_tf(tf_server_repo, "new", "a", "--agent", command, "--prompt", "0", env=tmux_env)
    wait_until(seen.exists, f"{seen} appearing")
    wait_until(lambda: ls(tf_server_repo)["a"]["agent"] == "exited", "the agent's exit showing in ls")


def test_without_tmux_the_workspace_is_still_made(tf_server_repo: Path, tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    for tool in ("git",):
        (bare_path / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    r = run_tf(tf_server_repo, "new", "a", "--agent", "claude", env={"PATH": str(bare_path)})
    assert "tmux is not installed" in r.err and "agent was not started" in r.err
    row = ls(tf_server_repo)["a"]
    assert row["status"] == "ready" and Path(row["path"]).is_dir()


def test_ls_without_tmux_says_so_for_every_workspace(tf_server_repo: Path, tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    (bare_path / "git").symlink_to(shutil.which("git"))  # type: ignore[arg-type]
    new(tf_server_repo, "a")
    new(tf_server_repo, "b")
    rows = {r["name"]: r for r in json.loads(run_tf(tf_server_repo, "ls", "--json", env={"PATH": str(bare_path)}).out)}
    assert (rows["root"]["agent"], rows["a"]["agent"], rows["b"]["agent"]) == (None, "no-tmux", "no-tmux")


def test_ls_fields_and_details(tf_server_repo: Path) -> None:
    a = Path(json.loads(run_tf(tf_server_repo, "new", "a", "--json").out)["path"])
    (a / "f.txt").write_text("x\n")
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "f")
    (a / "dirt.txt").write_text("y\n")
    rows = json.loads(run_tf(tf_server_repo, "ls", "--json").out)
    from treefork.workspace.views import FIELDS

    assert all(set(r) == {"schema_version", *FIELDS} for r in rows)
    row = {r["name"]: r for r in rows}["a"]
    assert (row["ahead"], row["behind"], row["dirty"]) == (1, 0, True)
    assert row["server"].startswith("localhost:") and row["disk_bytes"] > 0  # as the .env spells it
    assert "pw" not in json.dumps(rows) and "@" not in row["server"]
    details = run_tf(tf_server_repo, "ls", "a").out
    assert "ahead:" in details and "dirty:         True" in details
    assert json.loads(run_tf(tf_server_repo, "ls", "a", "--json").out)["name"] == "a"
    table = run_tf(tf_server_repo, "ls").out
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
    # whole columns go before any value is cut
    assert columns == ["name", "branch", "tree"] and rows == [["a", "a", "clean"]]


def test_ls_counts_ahead_and_behind_from_each_parents_own_head(tf_server_repo: Path) -> None:
    """Every row's base is its parent worktree's HEAD (read from one `git worktree list`), not the root's."""
    a = new(tf_server_repo, "a")
    git(a, "commit", "-q", "--allow-empty", "-m", "a1")
    b = new(tf_server_repo, "b", "--from", "a")
    git(a, "commit", "-q", "--allow-empty", "-m", "a2")
    git(b, "commit", "-q", "--allow-empty", "-m", "b1")
    git(tf_server_repo, "commit", "-q", "--allow-empty", "-m", "root1")
    rows = ls(tf_server_repo)
    assert (rows["a"]["ahead"], rows["a"]["behind"]) == (2, 1)  # a1, a2 / root1
    assert (rows["b"]["ahead"], rows["b"]["behind"]) == (1, 1)  # b1 / a2
    assert rows["root"]["branch"] == "main"
    git(tf_server_repo, "switch", "-q", "--detach")
    assert ls(tf_server_repo)["root"]["branch"] is None


def test_rm_deletes_a_branch_merged_into_its_parent_workspace_not_the_root(tf_server_repo: Path) -> None:
    a = new(tf_server_repo, "a")
    b = new(tf_server_repo, "b", "--from", "a")
    git(b, "commit", "-q", "--allow-empty", "-m", "b1")
    git(a, "merge", "-q", "--ff-only", "b")  # merged into a's HEAD; the root's HEAD lacks it
    out = json.loads(run_tf(tf_server_repo, "rm", "b", "--json").out)
    assert out[0]["branch_deleted"] is True
    c = new(tf_server_repo, "c", "--from", "a")
    git(c, "commit", "-q", "--allow-empty", "-m", "c1")
    git(tf_server_repo, "merge", "-q", "--ff-only", "c")  # merged into the root's HEAD, not into its parent a's
    out = json.loads(run_tf(tf_server_repo, "rm", "c", "--json").out)
    assert out[0]["branch_deleted"] is False and "not merged" in out[0]["branch_kept_reason"]


@needs_tmux
def test_ls_tells_each_workspaces_agent_apart_with_one_tmux_server(
    tf_server_repo: Path, tmux_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One tmux call answers every row: running, exited and none side by side, and a session of the same
    workspace name in another repository is not this one's."""
    import subprocess

    from treefork.agents import tmux

    monkeypatch.delenv("TMUX", raising=False)  # the test's own server, even when pytest runs inside tmux
    assert not tmux.server_may_run()
    new(tf_server_repo, "idle")
    assert ls(tf_server_repo)["idle"]["agent"] == "none"
    assert not tmux.server_may_run()  # asking did not start a server
    seen = tmp_path / "seen"
    run_tf(
        tf_server_repo, "new", "busy", "--agent", f"{sys.executable} -c {json.dumps(AGENT)} {seen}", "--prompt", "30"
    )
    run_tf(
        tf_server_repo, "new", "done", "--agent", f"{sys.executable} -c {json.dumps(AGENT)} {seen}.2", "--prompt", "0"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", "other-repo/idle", "sleep 30"], check=True)
    assert tmux.server_may_run()
    wait_until(Path(f"{seen}.2").exists, f"{Path(f'{seen}.2')} appearing")
    wait_until(lambda: ls(tf_server_repo)["done"]["agent"] == "exited", "the finished agent's exit showing in ls")
    rows = ls(tf_server_repo)
    assert (rows["busy"]["agent"], rows["idle"]["agent"], rows["root"]["agent"]) == ("running", "none", None)
    run_tf(tf_server_repo, "rm", "busy", "done", "--force")
    assert subprocess.run(["tmux", "has-session", "-t", "=other-repo/idle"]).returncode == 0


def test_server_may_run_looks_where_a_tmux_client_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from treefork.agents.tmux import server_may_run

    inside = tmp_path / "inside"
    monkeypatch.setenv("TMUX", f"{inside},123,0")  # inside tmux: the socket $TMUX names
    assert not server_may_run()
    inside.touch()
    assert server_may_run()
    monkeypatch.delenv("TMUX")
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    (tmp_path / f"tmux-{os.getuid()}").mkdir()
    assert not server_may_run()
    (tmp_path / f"tmux-{os.getuid()}" / "default").touch()
    assert server_may_run()
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path / "missing"))  # tmux 3 falls back to /tmp
    assert server_may_run() is (Path("/tmp") / f"tmux-{os.getuid()}" / "default").exists()


@needs_tmux
def test_finding_22_rm_kills_only_its_own_repositorys_agent(
    tf_server_repo: Path, tmux_env, tmp_path: Path, pg_server
) -> None:
    """Two checkouts both called `app`, a workspace `feat` with an agent in each: `ls` and `rm` in one never
    see or kill the other's. The same within a repository for `agent.y` and `agent_y`."""
    import subprocess

    from conftest import make_repo

    other = make_repo(tmp_path / "clientB" / "app")
    run_tf(other, "init", "--server-url", pg_server.url())
    for repo in (tf_server_repo, other):
        run_tf(repo, "new", "feat", "--agent", "sleep 100", env=tmux_env)
    run_tf(tf_server_repo, "new", "agent.y", "--agent", "sleep 100", env=tmux_env)
    run_tf(tf_server_repo, "new", "agent_y", "--agent", "sleep 100", env=tmux_env)
    sessions = subprocess.run(["tmux", "ls", "-F", "#{session_name}"], capture_output=True, text=True).stdout.split()
    assert len(sessions) == 4, sessions
    run_tf(other, "rm", "feat", "--force", env=tmux_env)
    assert ls(tf_server_repo)["feat"]["agent"] == "running" and "feat" not in ls(other)
    run_tf(tf_server_repo, "rm", "agent.y", "--force", env=tmux_env)
    assert ls(tf_server_repo)["agent_y"]["agent"] == "running"
    left = subprocess.run(["tmux", "ls", "-F", "#{session_name}"], capture_output=True, text=True).stdout.split()
    assert len(left) == 2
    # a session of the same name that treefork did not start for this worktree is not killed either
    victim = next(s for s in left if s.endswith("/feat"))
    subprocess.run(["tmux", "set-option", "-t", f"={victim}:", "@treefork-worktree", "/elsewhere"], check=True)
    run_tf(tf_server_repo, "rm", "feat", "--force", env=tmux_env)
    assert subprocess.run(["tmux", "has-session", "-t", f"={victim}"]).returncode == 0
