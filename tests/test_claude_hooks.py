"""Claude Code WorktreeCreate / WorktreeRemove hooks and the settings merge."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import db_url, git, run_tf


def _payload(repo: Path, **fields: str) -> str:
    return json.dumps({"session_id": "s", "transcript_path": "/tmp/t", "cwd": str(repo), **fields})


def _create(repo: Path, name: str):
    return run_tf(repo, "claude-hook", "create", input=_payload(repo, hook_event_name="WorktreeCreate", name=name))


def _remove(repo: Path, path: str):
    return run_tf(
        repo, "claude-hook", "remove", input=_payload(repo, hook_event_name="WorktreeRemove", worktree_path=path)
    )


def test_create_and_remove(tf_repo: Path) -> None:
    run_tf(tf_repo, "install", "--claude")  # post-checkout fires inside create too: it must back off
    r = _create(tf_repo, "feature/auth")
    path = r.out.strip().splitlines()[-1]
    expected = tf_repo / ".claude" / "worktrees" / "feature+auth"
    assert Path(path) == expected and Path(path).is_absolute()
    assert r.out.strip() == path  # nothing else on stdout
    assert git(expected, "symbolic-ref", "--short", "HEAD").stdout.strip() == "worktree-feature+auth"
    assert db_url(expected) != db_url(tf_repo)
    rows = {x["name"]: x for x in json.loads(run_tf(tf_repo, "ls", "--json").out)}
    assert rows["feature/auth"]["origin"] == "claude" and rows["feature/auth"]["status"] == "ready"
    assert ".claude/worktrees" not in git(tf_repo, "status", "--porcelain", "-uall").stdout  # settings.json may show
    assert _create(tf_repo, "feature/auth").out.strip() == path  # idempotent

    _remove(tf_repo, path)
    assert not expected.exists()
    assert git(tf_repo, "branch", "--list", "worktree-feature+auth").stdout.strip() == ""
    assert "feature/auth" not in {x["name"] for x in json.loads(run_tf(tf_repo, "ls", "--json").out)}
    assert json.loads(run_tf(tf_repo, "gc", "--dry-run", "--json").out)["actions"] == []
    assert _remove(tf_repo, path).rc == 0  # the same removal may arrive twice


def test_create_accepts_worktree_name_and_fails_loudly(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "claude-hook", "create", input=_payload(tf_repo, worktree_name="wn"))
    assert r.out.strip().endswith("/.claude/worktrees/wn")
    bad = run_tf(tf_repo, "claude-hook", "create", input=_payload(tf_repo, name="a b"), check=False)
    assert bad.rc != 0 and bad.out.strip() == "" and "invalid workspace name" in bad.err


def test_settings_merge_keeps_other_keys_and_is_idempotent(tf_repo: Path) -> None:
    settings = tf_repo / ".claude" / "settings.json"
    settings.parent.mkdir()
    other = {
        "permissions": {"allow": ["Bash(ls)"]},
        "hooks": {
            "WorktreeCreate": [{"hooks": [{"type": "command", "command": "echo other"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "x"}]}],
        },
    }
    settings.write_text(json.dumps(other))
    run_tf(tf_repo, "install", "--claude")
    once = settings.read_text()
    run_tf(tf_repo, "install", "--claude")
    assert settings.read_text() == once
    data = json.loads(once)
    assert data["permissions"] == other["permissions"] and data["hooks"]["PreToolUse"] == other["hooks"]["PreToolUse"]
    create = [h for g in data["hooks"]["WorktreeCreate"] for h in g["hooks"]]
    assert create[0]["command"] == "echo other" and create[1]["command"].endswith("-m treefork claude-hook create")
    assert create[1]["timeout"] == 300
    assert any(h["command"].endswith("claude-hook remove") for g in data["hooks"]["WorktreeRemove"] for h in g["hooks"])
    checks = {c["name"]: c for c in json.loads(run_tf(tf_repo, "doctor", "--json").out)["checks"]}
    assert checks["claude settings"]["level"] == "ok"
    run_tf(tf_repo, "uninstall", "--claude")
    assert json.loads(settings.read_text()) == other
