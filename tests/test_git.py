"""treefork.git: the main worktree is found the way git itself finds it."""

from __future__ import annotations

from pathlib import Path

from conftest import git, make_repo
from treefork.git import Repo


def test_main_root_agrees_with_git_worktree_list(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    alias = tmp_path / "alias"
    alias.symlink_to(repo)
    sub = repo / "sub"
    sub.mkdir()
    for cwd in (repo, linked, alias, sub):
        found = Repo.discover(cwd)
        assert found.main_root == found.worktrees()[0].path == repo.resolve(), cwd


def test_main_root_of_a_separate_git_dir_comes_from_git(tmp_path: Path) -> None:
    work, store = tmp_path / "work", tmp_path / "store.git"
    work.mkdir()
    git(work, "init", "-q", "-b", "main", f"--separate-git-dir={store}")
    git(work, "commit", "-q", "--allow-empty", "-m", "init")
    found = Repo.discover(work)
    assert found.main_root == found.worktrees()[0].path
