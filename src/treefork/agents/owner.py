"""Agent-made worktrees that no hook will ever remove (`claude -p -w`, subagent worktrees), and when `gc`
may reclaim one: its agent process has exited, `git status` is clean, and none of its commits is missing
from every other branch and remote-tracking ref (nothing unmerged, nothing unpushed). Then the worktree,
its branch and its database go. Anything else is kept and listed by `treefork doctor`.

The owning process (pid and start time) is recorded in `<worktree git dir>/treefork-owner.json`, which goes
with the worktree. Without that record (no /proc to read it from) gc never reclaims the worktree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from treefork import platform
from treefork.git import Repo, git

FILE = "treefork-owner.json"


def gitdir_of(worktree: Path) -> Path | None:
    """A linked worktree's own git dir, read from its `.git` file (no git process, works from anywhere)."""
    dotgit = worktree / ".git"
    try:
        text = dotgit.read_text(encoding="utf-8", errors="replace") if dotgit.is_file() else ""
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.split(":", 1)[1].strip())
    return gitdir if gitdir.is_absolute() else (worktree / gitdir).resolve()


def _record_path(worktree: Path) -> Path | None:
    gitdir = gitdir_of(worktree)
    return gitdir / FILE if gitdir is not None else None


def record(worktree: Path, *, agent: str, pid: int | None, attended: bool = False) -> None:
    """`attended`: a session a person exits, who is asked Keep/Remove (Claude 2.1.332); what they kept, gc keeps."""
    path = _record_path(worktree)
    if path is not None and pid is not None:
        data = {"agent": agent, "pid": pid, "start": platform.process_start_time(pid), "attended": attended}
        path.write_text(json.dumps(data) + "\n", encoding="utf-8")


def _owner(worktree: Path) -> dict[str, Any] | None:
    path = _record_path(worktree)
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def owner_running(worktree: Path) -> str | None:
    """Why the agent that made this worktree may still be using it: running, or unknown (no record); or why
    it is the user's now: an attended session, whose exit asked Keep/Remove and heard Keep."""
    owner = _owner(worktree)
    if owner is None:
        return "no agent process was recorded for it"
    if owner.get("attended"):
        return "it was made by an interactive session, whose exit asks to keep or remove it (it was kept)"
    pid = owner["pid"]
    if platform.process_alive(pid) and (
        owner.get("start") is None or platform.process_start_time(pid) in (None, owner.get("start"))
    ):
        return f"its agent (pid {pid}) is still running"
    return None


def unique_commits(repo: Repo, branch: str) -> int:
    """Commits of `branch` that no other local branch, remote-tracking ref or the main HEAD holds."""
    r = git(
        "rev-list", "--count", f"refs/heads/{branch}", "--not", f"--exclude={branch}",
        "--branches", "--remotes", "HEAD", cwd=repo.main_root, check=False,
    )  # fmt: skip
    return int(r.out.strip() or 0) if r.rc == 0 else 1


def keep_reason(repo: Repo, worktree: Path, branch: str | None, *, check_owner: bool, check_dirty: bool) -> str | None:
    """Why this agent worktree must stay, or None when removing it (and its branch) loses nothing."""
    running = owner_running(worktree) if check_owner else None
    if running:
        return running
    if check_dirty and worktree.exists() and repo.is_dirty(worktree):
        return "it has uncommitted changes"
    if branch and repo.branch_exists(branch):
        n = unique_commits(repo, branch)
        if n:
            return f"branch {branch} has {n} commit(s) on no other branch or remote (unmerged, unpushed)"
    return None
