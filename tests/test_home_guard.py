"""The guard that fails a test writing into the real home directory (tests/testing/home_guard.py)."""

from __future__ import annotations

import os
from pathlib import Path

from testing.home_guard import REAL_HOME, changes, snapshot


def test_writes_under_a_home_are_seen(tmp_path: Path) -> None:
    (tmp_path / ".gitconfig").write_text("[user]\n")
    (tmp_path / ".claude").mkdir()  # an agent's own directory: not watched
    before = snapshot(tmp_path)
    assert changes(before, snapshot(tmp_path)) == []
    (tmp_path / ".gitconfig").write_text("[user]\n\tname = x\n")
    (tmp_path / ".local" / "share" / "treefork").mkdir(parents=True)
    (tmp_path / ".local" / "share" / "treefork" / "server.json").write_text("{}")
    (tmp_path / "app.worktrees").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text("{}")
    assert changes(before, snapshot(tmp_path)) == [
        ".gitconfig",
        ".local/share/treefork",
        ".local/share/treefork/server.json",
        "app.worktrees",
    ]


def test_tests_run_with_another_home() -> None:
    assert Path.home() != REAL_HOME and Path(os.environ["HOME"]) != REAL_HOME
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert var not in os.environ, f"{var} would send writes past the redirected HOME"
