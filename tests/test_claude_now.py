"""Claude Code as it is now (2.1.332, CONTRACTS C2), without the CLI: its git commands run with every hook off,
so plain `install` says its worktrees need `--claude` and doctor flags it; hooks are read from the main
repository, so worktrees get a copy of settings.local.json only for an older Claude (told by its version);
CLAUDE_PID names the Claude process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import run_tf

KEEP_PATH = os.environ["PATH"]


def _fake_claude(tmp_path: Path, version: str) -> Path:
    """An npm-installed Claude's layout: node_modules/@anthropic-ai/claude-code/{package.json,bin/claude.exe},
    and a `.bin/claude` link to it; the executable only prints its version."""
    pkg = tmp_path / f"v{version}" / "node_modules" / "@anthropic-ai" / "claude-code"
    (pkg / "bin").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "@anthropic-ai/claude-code", "version": version}))
    exe = pkg / "bin" / "claude.exe"
    exe.write_text(f"#!/bin/sh\necho {version}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    bin_dir = pkg.parent.parent / ".bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(exe)
    return bin_dir


def _create(repo: Path, name: str, env: dict[str, str]) -> Path:
    payload = json.dumps({"session_id": "s", "cwd": str(repo), "hook_event_name": "WorktreeCreate", "name": name})
    return Path(run_tf(repo, "claude-hook", "create", input=payload, env=env).out.strip())


@pytest.mark.parametrize(("version", "copied"), [("2.1.197", True), ("2.1.332", False), ("2.2.0", False)])
def test_settings_copied_into_worktrees_only_for_a_claude_that_needs_them(
    tf_server_repo: Path, tmp_path: Path, version: str, *, copied: bool
) -> None:
    bin_dir = _fake_claude(tmp_path, version)
    env = {"PATH": f"{bin_dir}{os.pathsep}{KEEP_PATH}"}
    run_tf(tf_server_repo, "install", "--claude", env=env)
    wt = _create(tf_server_repo, "a", env)
    assert (wt / ".claude" / "settings.local.json").is_file() is copied
    new = Path(json.loads(run_tf(tf_server_repo, "new", "b", "--json", env=env).out)["path"])
    assert (new / ".claude" / "settings.local.json").is_file() is copied
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json", env=env).out)["checks"]}
    assert checks.get("claude worktrees", {"level": "ok"})["level"] == "ok"


def test_a_claude_of_unknown_version_gets_the_copy(tf_server_repo: Path) -> None:
    """No claude on PATH and no CLAUDE_PID to read: the safe side, as before."""
    run_tf(tf_server_repo, "install", "--claude")
    wt = _create(tf_server_repo, "a", {})
    assert (wt / ".claude" / "settings.local.json").is_file()


def test_claude_pid_names_the_owner(tf_server_repo: Path) -> None:
    """The create hook records the process CLAUDE_PID names (not its own ancestors), so gc waits for it."""
    run_tf(tf_server_repo, "install", "--claude")
    wt = _create(tf_server_repo, "a", {"CLAUDE_PID": str(os.getpid())})
    gitdir = Path((wt / ".git").read_text().split(":", 1)[1].strip())
    assert json.loads((gitdir / "treefork-owner.json").read_text())["pid"] == os.getpid()


def test_plain_install_says_claude_worktrees_need_the_claude_integration(tf_server_repo: Path) -> None:
    (tf_server_repo / ".claude").mkdir()
    r = run_tf(tf_server_repo, "install")
    assert "git hook off" in r.err and "treefork install --claude" in r.err
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json").out)["checks"]}
    assert checks["agent claude"]["level"] == "warn" and "every git hook off" in checks["agent claude"]["message"]
    assert checks["agent claude"]["hint"] == "treefork install --claude"
    r = run_tf(tf_server_repo, "install", "--claude")
    assert "treefork install --claude" not in r.err
    assert "treefork install --claude" not in run_tf(tf_server_repo, "install").err  # installed now
