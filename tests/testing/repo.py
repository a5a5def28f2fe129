"""A repository as git and treefork's registry see it, read straight from the files and from git."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import git


def registry_file(repo: Path) -> Path:
    return repo / ".git" / "treefork" / "registry.json"


def registry(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(registry_file(repo).read_text())
    return data


def repo_id(repo: Path) -> str:
    rid = registry(repo)["repo_id"]
    assert rid
    return str(rid)


def root_db(repo: Path) -> str:
    name = registry(repo)["root_db_branch"]
    assert name
    return str(name)


def branches(repo: Path) -> set[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").stdout
    return {line for line in out.splitlines() if line}


def _worktrees(repo: Path) -> list[Path]:
    """Every worktree, the main one first, as resolved paths (`git worktree list --porcelain`)."""
    out = git(repo, "worktree", "list", "--porcelain").stdout
    return [Path(line.split(" ", 1)[1]).resolve() for line in out.splitlines() if line.startswith("worktree ")]


def worktree_paths(repo: Path) -> set[Path]:
    """Every worktree, the main one included."""
    return set(_worktrees(repo))


def git_worktrees(repo: Path) -> list[Path]:
    """The linked worktrees (the main one excluded)."""
    return _worktrees(repo)[1:]


def worktrees_dir(repo: Path) -> Path:
    return repo.parent / f"{repo.name}.worktrees"
