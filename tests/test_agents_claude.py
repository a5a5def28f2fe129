"""Claude Code itself (the newest npm release), driven offline against a local fake of the Messages API,
with `treefork install --claude`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from agents_support import agent_bin, agent_env, cli, install_all
from conftest import db_url, git, run_tf
from fake_anthropic import FakeAnthropic, last_user_text, text_reply
from pty_session import PtySession
from testing import caches
from testing.cli import gc_dry, ls
from testing.server import can_connect

KEY = "sk-ant-api03-" + "x" * 80


@pytest.fixture
def claude(agent_clis: dict) -> Path:
    return agent_bin(agent_clis, "claude")


@pytest.fixture(scope="module")
def agent_clis() -> dict:
    """The newest agent CLIs, each installed from npm once per version (cached outside HOME; agents_support)."""
    return install_all()


def _config(tmp_path: Path, repo: Path) -> dict[str, str]:
    home = tmp_path / "agent-home"
    config = home / ".claude-config"
    config.mkdir(parents=True)
    (config / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "bypassPermissionsModeAccepted": True,
                "customApiKeyResponses": {"approved": [KEY[-20:]], "rejected": []},
                "projects": {str(repo): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
            }
        )
    )
    return {"CLAUDE_CONFIG_DIR": str(config), "ANTHROPIC_API_KEY": KEY}


def _claude_p(claude: Path, repo: Path, fake: FakeAnthropic, env: dict[str, str], *args: str):
    return subprocess.run(
        [str(claude), "-p", "hello", *args],
        cwd=repo,
        env=agent_env(Path(env["CLAUDE_CONFIG_DIR"]).parent, ANTHROPIC_BASE_URL=fake.url, **env),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_print_mode_worktree_is_provisioned_then_reclaimed_by_gc(claude: Path, tf_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_repo, "install", "--claude")
    env = _config(tmp_path, tf_repo)
    with FakeAnthropic(text_reply("hi from the fake")) as fake:
        cp = _claude_p(claude, tf_repo, fake, env, "-w", "x")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert "hi from the fake" in cp.stdout
    wt = tf_repo / ".claude" / "worktrees" / "x"
    assert wt.is_dir() and ls(tf_repo)["x"]["status"] == "ready"
    url = db_url(wt)
    assert url != db_url(tf_repo) and can_connect(url)
    # `claude -p -w` never calls WorktreeRemove: the leftover is clean, with nothing unmerged, and its
    # claude process has exited, so gc reclaims the worktree, its branch and its database
    run_tf(tf_repo, "gc")
    assert not wt.exists() and "x" not in ls(tf_repo)
    assert "worktree-x" not in git(tf_repo, "branch", "--list").stdout
    assert not can_connect(url) and gc_dry(tf_repo) == []


def _interactive(claude: Path, repo: Path, fake: FakeAnthropic, env: dict[str, str], *args: str) -> PtySession:
    home = Path(env["CLAUDE_CONFIG_DIR"]).parent
    s = PtySession([str(claude), *args], cwd=repo, env=agent_env(home, ANTHROPIC_BASE_URL=fake.url, **env))
    s.expect(r"for\s*shortcuts|shift\+tab", timeout=90)
    return s


def _exit(s: PtySession, *, choose: str | None = None) -> int:
    """/exit; Claude 2.1.332 then asks about a hook-made worktree: 1. Keep worktree (the default), 2. Remove."""
    s.send("/exit")
    s.expect(r"Exit\s*the\s*CLI")
    s.send("\r")
    if choose is not None:
        s.expect(r"Remove\s*worktree")
        s.send("\x1b[B\r" if choose == "remove" else "\r")
    return s.wait(timeout=90)


def test_interactive_exit_choosing_remove_leaves_nothing(claude: Path, tf_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_repo, "install", "--claude")
    env = _config(tmp_path, tf_repo)
    wt = tf_repo / ".claude" / "worktrees" / "clean"
    with FakeAnthropic(text_reply()) as fake:
        s = _interactive(claude, tf_repo, fake, env, "-w", "clean")
        try:
            url = db_url(wt)
            assert can_connect(url) and ls(tf_repo)["clean"]["status"] == "ready"
            assert _exit(s, choose="remove") == 0
        finally:
            s.close()
    assert not wt.exists() and "clean" not in ls(tf_repo)
    assert "worktree-clean" not in git(tf_repo, "branch", "--list").stdout
    assert not can_connect(url) and gc_dry(tf_repo) == []


def test_interactive_exit_choosing_keep_keeps_all_three_and_gc_too(claude: Path, tf_repo: Path, tmp_path: Path) -> None:
    """Keep is the default: worktree, branch and database stay, and gc does not take back what the user kept
    (the worktree is clean, with nothing unmerged, and its Claude has exited)."""
    run_tf(tf_repo, "install", "--claude")
    env = _config(tmp_path, tf_repo)
    wt = tf_repo / ".claude" / "worktrees" / "kept"
    with FakeAnthropic(text_reply()) as fake:
        s = _interactive(claude, tf_repo, fake, env, "-w", "kept")
        try:
            url = db_url(wt)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE notes (body text)")
                conn.execute("INSERT INTO notes VALUES ('kept')")
            assert _exit(s, choose="keep") == 0
        finally:
            s.close()
    run_tf(tf_repo, "gc")
    run_tf(tf_repo, "ls")
    assert wt.is_dir() and ls(tf_repo)["kept"]["status"] == "ready"
    assert "worktree-kept" in git(tf_repo, "branch", "--list").stdout
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]


def test_interactive_session_with_commits_keeps_them(claude: Path, tf_repo: Path, tmp_path: Path) -> None:
    """Claude cannot count a hook-made worktree's commits and says they "may be lost"; choosing Remove,
    treefork's hook still refuses to lose them."""
    run_tf(tf_repo, "install", "--claude")
    env = _config(tmp_path, tf_repo)
    wt = tf_repo / ".claude" / "worktrees" / "work"
    with FakeAnthropic(text_reply()) as fake:
        s = _interactive(claude, tf_repo, fake, env, "-w", "work")
        try:
            url = db_url(wt)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE notes (body text)")
                conn.execute("INSERT INTO notes VALUES ('kept')")
            (wt / "feature.txt").write_text("committed work\n")
            git(wt, "add", "feature.txt")
            git(wt, "commit", "-q", "-m", "feature")
            _exit(s, choose="remove")
        finally:
            s.close()
    assert (wt / "feature.txt").read_text() == "committed work\n"
    assert git(tf_repo, "log", "-1", "--format=%s", "worktree-work").stdout.strip() == "feature"
    assert ls(tf_repo)["work"]["status"] == "ready"
    with psycopg.connect(db_url(wt)) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    run_tf(tf_repo, "gc")  # gc keeps it too: it has unmerged commits
    assert (wt / "feature.txt").exists() and "work" in ls(tf_repo)


def _subagent_script(body: dict) -> list[dict]:
    """Main session: call the Agent tool with worktree isolation once; everyone else: a short text."""
    text = last_user_text(body)
    tools = {t.get("name") for t in body.get("tools") or []}
    if "tool_result" in text:
        return [{"type": "text", "text": "all done"}]
    if "SUBAGENT-TASK" in text:
        return [{"type": "text", "text": "subagent finished"}]
    if "hello" in text and "Agent" in tools:
        spec = {"description": "isolated helper", "prompt": "SUBAGENT-TASK: say hi", "isolation": "worktree"}
        return [{"type": "tool_use", "name": "Agent", "input": {**spec, "subagent_type": "general-purpose"}}]
    return [{"type": "text", "text": "ok"}]


def test_subagent_worktree_is_provisioned_and_reclaimed(claude: Path, tf_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_repo, "install", "--claude")
    env = _config(tmp_path, tf_repo)
    with FakeAnthropic(_subagent_script) as fake:
        cp = _claude_p(claude, tf_repo, fake, env, "--allowedTools", "Agent")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    agents = {n: r for n, r in ls(tf_repo).items() if n.startswith("agent-")}
    assert len(agents) == 1, (cp.stdout, [b.get("messages") for b in fake.requests][-1:])
    ((name, row),) = agents.items()
    wt = Path(row["path"])
    assert row["origin"] == "claude" and wt.is_dir() and can_connect(db_url(wt))
    url = db_url(wt)
    run_tf(tf_repo, "gc")  # Claude keeps hook-made agent worktrees; gc reclaims this one: clean, nothing unmerged
    assert not wt.exists() and name not in ls(tf_repo)
    assert f"worktree-{name}" not in git(tf_repo, "branch", "--list").stdout
    assert not can_connect(url) and gc_dry(tf_repo) == []


def _reads_main_settings() -> bool:
    """Claude 2.1.332 reads hook settings from the main repository; older versions from the worktree."""
    return caches.version_key(cli("claude").version) >= [2, 1, 332]


def test_claude_started_inside_a_treefork_worktree_still_uses_treefork(
    claude: Path, tf_repo: Path, tmp_path: Path
) -> None:
    """`claude -w x` run inside a `treefork new` worktree goes through our hook (workspace `x`, not Claude's
    built-in `worktree-x`): 2.1.332 reads the main repository's settings, so `new` (which finds that Claude on
    PATH) copies nothing; an older Claude gets its copy of settings.local.json."""
    run_tf(tf_repo, "install", "--claude")
    path_env = f"{claude.parent}{os.pathsep}{os.environ['PATH']}"
    a = Path(json.loads(run_tf(tf_repo, "new", "a", "--json", env={"PATH": path_env}).out)["path"])
    assert (a / ".claude" / "settings.local.json").is_file() is not _reads_main_settings()
    assert git(a, "status", "--porcelain").stdout.strip() == ""
    env = _config(tmp_path, tf_repo)
    with FakeAnthropic(text_reply()) as fake:
        cp = _claude_p(claude, a, fake, env, "-w", "x")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    row = ls(tf_repo)["x"]
    x = Path(row["path"])
    assert row["origin"] == "claude" and x == tf_repo / ".claude" / "worktrees" / "x"
    assert can_connect(db_url(x))
    # the hook tells the version from CLAUDE_PID's executable: a copy only for a Claude that needs one
    assert (x / ".claude" / "settings.local.json").is_file() is not _reads_main_settings()


def _exit_worktree_script(body: dict) -> list[dict]:
    """ExitWorktree is a deferred tool (2.1.332): load it through ToolSearch, then call it."""
    text = last_user_text(body)
    tools = {t.get("name") for t in body.get("tools") or []}
    if "tool_result" in text and "tool_reference" not in text:  # ExitWorktree's own result
        return [{"type": "text", "text": "left the worktree"}]
    if "ExitWorktree" in tools:  # loaded (or, before 2.1.332, always there)
        return [{"type": "tool_use", "name": "ExitWorktree", "input": {"action": "remove", "discard_changes": True}}]
    if "ToolSearch" in tools:
        return [{"type": "tool_use", "name": "ToolSearch", "input": {"query": "select:ExitWorktree", "max_results": 1}}]
    return [{"type": "text", "text": "ok"}]


def test_exit_worktree_tool_removes_a_clean_worktree(claude: Path, tf_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_repo, "install", "--claude")
    env = _config(tmp_path, tf_repo)
    wt = tf_repo / ".claude" / "worktrees" / "ex"
    with FakeAnthropic(_exit_worktree_script) as fake:
        cp = _claude_p(claude, tf_repo, fake, env, "-w", "ex", "--allowedTools", "ExitWorktree,ToolSearch")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert any("ExitWorktree" in json.dumps(r.get("messages")) for r in fake.requests), "the tool never ran"
    assert not wt.exists() and "ex" not in ls(tf_repo)
    assert "worktree-ex" not in git(tf_repo, "branch", "--list").stdout and gc_dry(tf_repo) == []
