"""The stress suite's fixture; its helpers live in the testing package (tests/testing/) and are re-exported
here for the tests that import them from `.conftest`."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.checks import (
    SECRET_KEYS,
    URL_VAR,
    assert_consistent,
    assert_empty,
    check_worktree_env,
    expected_env_lines,
)
from testing.cli import assert_clear_error, last_line, ls_json, popen_tf
from testing.repo import git_worktrees, registry_file, repo_id
from testing.server import (
    cluster_records,
    db_branch_of,
    home,
    marked_databases,
    root_cluster,
    unmarked_databases,
)


@pytest.fixture
def main_env(tf_repo: Path) -> bytes:
    return (tf_repo / ".env").read_bytes()


__all__ = [
    "SECRET_KEYS",
    "URL_VAR",
    "assert_clear_error",
    "assert_consistent",
    "assert_empty",
    "check_worktree_env",
    "expected_env_lines",
    "git_worktrees",
    "home",
    "last_line",
    "ls_json",
    "marked_databases",
    "popen_tf",
    "registry_file",
    "repo_id",
    "cluster_records",
    "db_branch_of",
    "root_cluster",
    "unmarked_databases",
]
