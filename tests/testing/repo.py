"""A repository as git and treefork's registry see it, read straight from the files and from git."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from conftest import git, make_repo, run_tf

APP_PORT_VARS = ("PORT", "VITE_PORT")


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


def ports_repo(root: Path) -> Path:
    """An initialised repo (local backend) whose treefork.toml gives every workspace its own PORT and
    VITE_PORT."""
    repo = make_repo(root)
    with_ports(repo)
    run_tf(repo, "init", "--no-import")
    return repo


def with_ports(repo: Path) -> Path:
    """repo, its treefork.toml (committed) giving every workspace its own PORT and VITE_PORT."""
    (repo / "treefork.toml").write_text('ports = ["PORT", "VITE_PORT"]\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "ports")
    return repo


def app_ports(worktree: Path) -> dict[str, int]:
    """The ports a worktree's env file gives its app."""
    env = dotenv_values(worktree / ".env")
    return {v: int(env[v] or 0) for v in APP_PORT_VARS}
