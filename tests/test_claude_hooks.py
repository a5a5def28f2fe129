"""Claude Code WorktreeCreate / WorktreeRemove hooks fed the payloads Claude 2.1.197 sends (CONTRACTS C),
and the settings merge. The same hooks driven by the real `claude` are in test_agents_claude.py."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import db_url, git, run_tf
from testing import claude
from testing.cli import gc_dry, ls
from testing.server import can_connect


def test_create_and_remove_from_inside(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install", "--claude")  # post-checkout fires inside create too: it must back off
    r = claude.create(tf_server_repo, "feature/auth")
    path = Path(r.out.strip().splitlines()[-1])
    expected = tf_server_repo / ".claude" / "worktrees" / "feature+auth"
    assert path == expected and path.is_absolute() and r.out.strip() == str(path)  # nothing else on stdout
    assert git(expected, "symbolic-ref", "--short", "HEAD").stdout.strip() == "worktree-feature+auth"
    assert db_url(expected) != db_url(tf_server_repo) and can_connect(db_url(expected))
    row = ls(tf_server_repo)["feature/auth"]
    assert row["origin"] == "claude" and row["status"] == "ready"
    # the hooks reach the worktree: settings.local.json copied, and nothing of ours shows in git status
    assert (expected / ".claude" / "settings.local.json").read_text() == (
        tf_server_repo / ".claude" / "settings.local.json"
    ).read_text()
    assert git(tf_server_repo, "status", "--porcelain", "-uall").stdout.strip() == ""
    assert git(expected, "status", "--porcelain", "-uall").stdout.strip() == ""
    assert claude.create(tf_server_repo, "feature/auth").out.strip() == str(path)  # idempotent (Claude resumes by name)
    assert gc_dry(tf_server_repo) == []  # its agent (here: this test process) is still running, so gc keeps it

    claude.remove(expected, expected)
    assert not expected.exists()
    assert git(tf_server_repo, "branch", "--list", "worktree-feature+auth").stdout.strip() == ""
    assert "feature/auth" not in ls(tf_server_repo)
    assert gc_dry(tf_server_repo) == []
    assert claude.remove(tf_server_repo, expected).rc == 0  # the same removal may arrive twice


def test_remove_keeps_committed_work(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install", "--claude")
    wt = Path(claude.create(tf_server_repo, "w").out.strip())
    url = db_url(wt)
    (wt / "work.txt").write_text("precious\n")
    git(wt, "add", "work.txt")
    git(wt, "commit", "-q", "-m", "work")
    r = claude.remove(wt, wt, check=False)
    assert r.rc == 1 and "1 commit(s) on no other branch" in r.err and "treefork rm w" in r.err
    assert (wt / "work.txt").read_text() == "precious\n"
    assert ls(tf_server_repo)["w"]["status"] == "ready" and can_connect(url)
    git(tf_server_repo, "merge", "-q", "--ff-only", "worktree-w")  # once merged, removal loses nothing
    claude.remove(wt, wt)
    assert not wt.exists() and "w" not in ls(tf_server_repo)
    assert (tf_server_repo / "work.txt").read_text() == "precious\n"


def test_what_claude_would_have_done(tf_server_repo: Path, tmp_path: Path) -> None:
    """.worktreeinclude (never over our env file), symlinkDirectories, sparsePaths, baseRef."""
    for d in ("src", "docs"):
        (tf_server_repo / d).mkdir()
        (tf_server_repo / d / "f.txt").write_text(d)
    (tf_server_repo / ".gitignore").write_text(".env\nsecret.json\nnode_modules/\n")
    (tf_server_repo / ".worktreeinclude").write_text(".env\nsecret.json\n")
    git(tf_server_repo, "add", ".")
    git(tf_server_repo, "commit", "-q", "-m", "layout")
    (tf_server_repo / "secret.json").write_text("{}")
    (tf_server_repo / "node_modules").mkdir()
    settings = tf_server_repo / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"worktree": {"symlinkDirectories": ["node_modules"], "sparsePaths": ["src"]}}))
    git(tf_server_repo, "add", ".")
    git(tf_server_repo, "commit", "-q", "-m", "claude settings")
    # a remote whose default branch is one commit behind main's HEAD, whose data the database forks
    remote = tmp_path / "remote.git"
    git(tf_server_repo, "clone", "-q", "--bare", str(tf_server_repo), str(remote))
    git(tf_server_repo, "remote", "add", "origin", str(remote))
    git(tf_server_repo, "fetch", "-q", "origin")
    git(tf_server_repo, "remote", "set-head", "origin", "main")
    git(tf_server_repo, "commit", "-q", "--allow-empty", "-m", "local only")
    run_tf(tf_server_repo, "install", "--claude")

    r = claude.create(tf_server_repo, "a")
    wt = Path(r.out.strip())
    assert git(wt, "rev-parse", "HEAD").stdout == git(tf_server_repo, "rev-parse", "HEAD").stdout, (
        "code and data start from the same place: main's HEAD, not origin/main behind it (Claude's own default)"
    )
    assert "ahead of the code" not in r.err and ls(tf_server_repo)["a"]["data_ahead_of_code"] is False
    assert (wt / "secret.json").read_text() == "{}"
    assert db_url(wt) != db_url(tf_server_repo)  # .worktreeinclude lists .env: ours was kept
    assert (wt / "node_modules").is_symlink()
    assert (wt / "src" / "f.txt").exists() and not (wt / "docs").exists()

    settings.write_text(json.dumps({"worktree": {"baseRef": "head"}}))
    wt2 = Path(claude.create(tf_server_repo, "b").out.strip())
    assert git(wt2, "rev-parse", "HEAD").stdout == git(tf_server_repo, "rev-parse", "HEAD").stdout

    settings.write_text(json.dumps({"worktree": {"baseRef": "fresh"}}))  # asked for: honoured, and said
    r = claude.create(tf_server_repo, "c")
    wt3 = Path(r.out.strip())
    assert git(wt3, "rev-parse", "HEAD").stdout == git(tf_server_repo, "rev-parse", "origin/main").stdout
    assert "warning: workspace c: its code starts at" in r.err and "the data is ahead of the code" in r.err
    row = ls(tf_server_repo)["c"]
    assert row["data_ahead_of_code"] is True and row["code_base"] == git(wt3, "rev-parse", "HEAD").stdout.strip()


def test_settings_merge_foreign_hook_and_uninstall(tf_server_repo: Path) -> None:
    local = tf_server_repo / ".claude" / "settings.local.json"
    local.parent.mkdir()
    other = {
        "permissions": {"allow": ["Bash(ls)"]},
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "x"}]}]},
    }
    local.write_text(json.dumps(other))
    run_tf(tf_server_repo, "install", "--claude")
    once = local.read_text()
    run_tf(tf_server_repo, "install", "--claude")
    assert local.read_text() == once
    data = json.loads(once)
    assert data["permissions"] == other["permissions"] and data["hooks"]["PreToolUse"] == other["hooks"]["PreToolUse"]
    create = [h for g in data["hooks"]["WorktreeCreate"] for h in g["hooks"]]
    assert create[0]["command"].endswith("-m treefork claude-hook create") and create[0]["timeout"] == 300
    assert (
        git(tf_server_repo, "status", "--porcelain", "-uall").stdout.strip() == ""
    )  # the machine path stays untracked
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)["checks"]}
    assert checks["agent claude"]["level"] == "ok"

    shared = tf_server_repo / ".claude" / "settings.json"
    shared.write_text(json.dumps({"hooks": {"WorktreeCreate": [{"hooks": [{"type": "command", "command": "mine"}]}]}}))
    r = run_tf(tf_server_repo, "install", "--claude", check=False)
    assert r.rc == 1 and "already has a WorktreeCreate hook (mine)" in r.err
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)["checks"]}
    assert checks["claude settings"]["level"] == "fail" and "mine" in checks["claude settings"]["message"]
    shared.unlink()

    run_tf(tf_server_repo, "uninstall", "--claude")
    assert json.loads(local.read_text()) == other


def test_install_moves_an_old_install_out_of_the_tracked_settings_and_refuses_a_tracked_local(
    tf_server_repo: Path,
) -> None:
    shared = tf_server_repo / ".claude" / "settings.json"
    shared.parent.mkdir()
    old = "/old/venv/bin/python -m treefork claude-hook create"
    shared.write_text(json.dumps({"model": "x", "hooks": {"WorktreeCreate": [{"hooks": [{"command": old}]}]}}))
    run_tf(tf_server_repo, "install", "--claude")
    assert json.loads(shared.read_text()) == {"model": "x"}
    assert "claude-hook create" in (tf_server_repo / ".claude" / "settings.local.json").read_text()
    run_tf(tf_server_repo, "uninstall", "--claude")
    git(tf_server_repo, "add", "-f", ".claude/settings.local.json")
    git(tf_server_repo, "commit", "-q", "-m", "tracked local settings")
    r = run_tf(tf_server_repo, "install", "--claude", check=False)
    assert r.rc == 1 and "is tracked by git" in r.err and "git rm --cached" in r.err


def test_create_in_a_repository_without_commits_says_so(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run_tf(root, "init", "--no-import")
    r = run_tf(root, "claude-hook", "create", input=claude.payload(root, name="c"), check=False)
    assert r.rc == 1 and "no commits yet" in r.err
    assert not (root / ".claude" / "worktrees" / "c").exists() and ls(root).keys() == {"root"}
