"""Kept for the tests that import from here: the helpers live in the testing package (tests/testing/)."""

from __future__ import annotations

from testing.checks import assert_nothing_left
from testing.cli import assert_one_line_error, gc_dry, ls, new
from testing.repo import branches, registry, repo_id, root_db, worktree_paths, worktrees_dir
from testing.server import (
    admin_conn,
    admin_url,
    can_connect,
    cluster_dirs,
    cluster_of,
    cluster_records,
    db_exists,
    home,
)

__all__ = [
    "admin_conn",
    "assert_nothing_left",
    "assert_one_line_error",
    "branches",
    "can_connect",
    "db_exists",
    "admin_url",
    "cluster_dirs",
    "cluster_of",
    "cluster_records",
    "gc_dry",
    "home",
    "ls",
    "new",
    "registry",
    "repo_id",
    "root_db",
    "worktree_paths",
    "worktrees_dir",
]
