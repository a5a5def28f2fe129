"""What Claude Code does for a new worktree when no WorktreeCreate hook is set, done by our hook in its place
(CONTRACTS C, "Built-in creation"): the base ref, sparse paths, the settings.local.json copy (older Claude), the
`worktree.symlinkDirectories` links and the `.worktreeinclude` copies (never over our env file)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from treefork import beneath, output
from treefork.agents import claude_settings
from treefork.git import Repo, git


def base_ref(repo: Repo, settings: dict[str, Any], *, head: str) -> str:
    """The main worktree's HEAD (the caller read it already): the code of the data the workspace's database
    is forked from. Claude's own default is origin/<default branch>, which can be behind it (an unpushed
    merge): the code would lack a column its database has. A baseRef the user set other than 'head' (Claude's
    'fresh') is honoured: origin/<default branch> when there is one (the create then warns if the data is
    ahead of that code)."""
    asked = settings.get("baseRef")
    if asked is not None and asked != "head":
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
    """The copies and links, after the env file exists (so nothing here can replace it). Each is made inside
    the worktree and nowhere else (beneath.py): an entry that would leave it is skipped with a warning. `pid`:
    the Claude process, whose version says whether the worktree needs a copy of the hooks' settings."""
    if claude_settings.worktrees_need_settings(pid=pid):
        _copy_local_settings(repo.main_root, path)
    for rel in settings.get("symlinkDirectories") or []:
        if isinstance(rel, str):
            _inside(rel, functools.partial(_symlink_directory, repo.main_root, path, rel))
    for rel in worktreeinclude_files(repo):
        if rel == env_file or rel.startswith(".claude/worktrees/"):
            continue  # our env file holds this worktree's DATABASE_URL; the main one's must never land here
        _inside(rel, functools.partial(_copy_file, repo.main_root, path, rel))


def share_settings(repo: Repo, path: Path) -> None:
    """Any new worktree gets the hooks when they are installed and the Claude here reads them from the worktree
    (before 2.1.332): `claude -w` started in it then runs ours."""
    if claude_settings.installed(repo) and claude_settings.worktrees_need_settings():
        _copy_local_settings(repo.main_root, path)


def _copy_local_settings(main: Path, path: Path) -> None:
    if (main / claude_settings.LOCAL).is_file():
        _inside(str(claude_settings.LOCAL), lambda: _copy_file(main, path, str(claude_settings.LOCAL), replace=False))


def _copy_file(main: Path, path: Path, rel: str, *, replace: bool = True) -> None:
    data, mode = beneath.read_file(main, rel)
    beneath.write_file(path, rel, data, mode=mode, replace=replace)


def _symlink_directory(main: Path, path: Path, rel: str) -> None:
    beneath.parts_of(rel)  # `..` or an absolute path is refused before anything is looked at
    if (main / rel).is_dir():
        beneath.symlink(path, rel, main / rel)


def _inside(rel: str, step: Callable[[], None]) -> None:
    try:
        step()
    except beneath.Outside as e:
        output.warn(f"not copying or linking {rel} into the worktree: {e.message}")
    except FileNotFoundError:
        pass  # gone from the main checkout meanwhile


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
