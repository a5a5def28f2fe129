"""What Claude Code does for a new worktree when no WorktreeCreate hook is set, done by our hook in its place
(CONTRACTS C, "Built-in creation"): the base ref, sparse paths, the settings.local.json copy (older Claude), the
`worktree.symlinkDirectories` links and the `.worktreeinclude` copies (never over our env file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from treefork import output
from treefork.agents import claude_settings
from treefork.git import Repo, git


def base_ref(repo: Repo, settings: dict[str, Any], *, head: str) -> str:
    """Claude's default ('fresh'): origin/<default branch>; the local HEAD (the caller read it already) with
    baseRef 'head' or no such remote ref."""
    if settings.get("baseRef") != "head":
        remote = repo.rev("refs/remotes/origin/HEAD")
        if remote:
            return remote
    return head


def add(repo: Repo, path: Path, branch: str, settings: dict[str, Any], *, head: str) -> bool:
    """`git worktree add` as Claude runs it: a new branch at the base (an existing one is resumed). Returns
    whether it created the branch. `head` is the main worktree's HEAD commit."""
    sparse = [p for p in settings.get("sparsePaths") or [] if isinstance(p, str)]
    checkout = ["--no-checkout"] if sparse else []
    created = not repo.branch_exists(branch)
    if not created:
        git("worktree", "add", *checkout, str(path), branch, cwd=repo.main_root)
    else:
        git(
            "worktree",
            "add",
            *checkout,
            "--no-track",
            "-b",
            branch,
            str(path),
            base_ref(repo, settings, head=head),
            cwd=repo.main_root,
        )
    if sparse:
        git("sparse-checkout", "set", "--cone", "--", *sparse, cwd=path)
        git("checkout", "HEAD", cwd=path)
    return created


def finish(repo: Repo, path: Path, settings: dict[str, Any], *, env_file: str, pid: int | None) -> None:
    """The copies and links, after the env file exists (so nothing here can replace it). `pid`: the Claude
    process, whose version says whether the worktree needs a copy of the hooks' settings."""
    if claude_settings.worktrees_need_settings(pid=pid):
        _copy_local_settings(repo.main_root, path)
    _symlink_directories(repo.main_root, path, settings)
    for rel in worktreeinclude_files(repo):
        if rel == env_file or rel.startswith(".claude/worktrees/"):
            continue  # our env file holds this worktree's DATABASE_URL; the main one's must never land here
        src, dst = repo.main_root / rel, path / rel
        if src.is_symlink() or not src.is_file():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def share_settings(repo: Repo, path: Path) -> None:
    """Any new worktree gets the hooks when they are installed and the Claude here reads them from the worktree
    (before 2.1.332): `claude -w` started in it then runs ours."""
    if claude_settings.installed(repo) and claude_settings.worktrees_need_settings():
        _copy_local_settings(repo.main_root, path)


def _copy_local_settings(main: Path, path: Path) -> None:
    src = main / claude_settings.LOCAL
    if src.is_file() and not (path / claude_settings.LOCAL).is_file():
        dst = path / claude_settings.LOCAL
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _symlink_directories(main: Path, path: Path, settings: dict[str, Any]) -> None:
    for rel in settings.get("symlinkDirectories") or []:
        if not isinstance(rel, str) or not (main / rel).is_dir():
            continue
        link = path / rel
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(main / rel, link, target_is_directory=True)


def worktreeinclude_files(repo: Repo) -> list[str]:
    """Files of the main checkout that git ignores and `.worktreeinclude` lists (gitignore syntax)."""
    include = repo.main_root / ".worktreeinclude"
    if not include.is_file():
        return []
    listed = _ls_ignored(repo, f"--exclude-from={include}")
    if not listed:
        return []
    ignored = set(_ls_ignored(repo, "--exclude-standard"))
    files = [f for f in listed if f in ignored]
    if files:
        output.info(f"treefork: copying {len(files)} file(s) listed in .worktreeinclude")
    return files


def _ls_ignored(repo: Repo, source: str) -> list[str]:
    r = git("ls-files", "-z", "--others", "--ignored", source, cwd=repo.main_root, check=False)
    return [f for f in r.out.split("\0") if f]
