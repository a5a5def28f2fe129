"""Claude Code's worktree hooks as Claude runs them: `treefork claude-hook create|remove` fed the JSON payload
Claude sends (CONTRACTS C), in-process."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Run, run_tf


def payload(cwd: Path, **fields: str) -> str:
    return json.dumps({"session_id": "s", "transcript_path": "/tmp/t", "cwd": str(cwd), **fields})


def create(repo: Path, name: str, *, check: bool = True) -> Run:
    """WorktreeCreate for NAME, from the main worktree; its stdout is the worktree's path."""
    return run_tf(
        repo, "claude-hook", "create", input=payload(repo, hook_event_name="WorktreeCreate", name=name), check=check
    )


def remove(cwd: Path, path: Path, *, check: bool = True) -> Run:
    """WorktreeRemove of PATH as Claude runs it: process cwd and payload cwd are CWD (the worktree itself)."""
    return run_tf(
        cwd,
        "claude-hook",
        "remove",
        input=payload(cwd, hook_event_name="WorktreeRemove", worktree_path=str(path)),
        check=check,
    )
