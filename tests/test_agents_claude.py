"""Claude Code itself (the npm package, pinned), driven offline against a local fake of the Messages API,
with `treefork install --claude`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agents_support import agent_bin, agent_env, ls
from conftest import db_url, git, run_tf
from fake_anthropic import FakeAnthropic, last_user_text, text_reply
from tf_helpers import can_connect, gc_dry

KEY = "sk-ant-api03-" + "x" * 80


@pytest.fixture(scope="module")
def claude() -> Path:
    return agent_bin("claude")


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
