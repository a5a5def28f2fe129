"""16 parallel `treefork new` and then 16 parallel `rm` on the Neon backend, against the fake API
answering 20% of requests with 429/423/503: every create succeeds and nothing is orphaned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git
from neon_fake import PROJECT, FakeNeon, neon_env
from testing.repo import registry

pytest_plugins = ["conftest_neon"]
pytestmark = pytest.mark.stress

N = 16


def _spawn(repo: Path, fake: FakeNeon, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **neon_env(fake)}
    return subprocess.Popen(
        [sys.executable, "-m", "treefork", *args],
        cwd=repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    return [(p.wait(timeout=300), p.communicate()[1]) for p in procs]


def _worktrees(repo: Path) -> set[str]:
    out = git(repo, "worktree", "list", "--porcelain").stdout
    return {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")} - {str(repo)}


def test_parallel_new_and_rm_under_a_rate_limit_storm(neon_repo: Path, fake_neon: FakeNeon) -> None:
    fake_neon.fault_rate = 0.2
    names = [f"agent-{i}" for i in range(N)]
    results = _finish([_spawn(neon_repo, fake_neon, "new", n) for n in names])
    failures = [(n, rc, err) for n, (rc, err) in zip(names, results, strict=True) if rc != 0]
    assert not failures, failures

    reg = registry(neon_repo)["workspaces"]
    assert set(reg) == set(names)
    assert {w["db_branch"]: w["db_id"] for w in reg.values()} == fake_neon.branch_names(PROJECT)
    assert _worktrees(neon_repo) == {w["path"] for w in reg.values()}
    urls = set()
    for w in reg.values():
        env_text = (Path(w["path"]) / ".env").read_text()
        assert "NEON_API_KEY" not in env_text
        url = next(line for line in env_text.splitlines() if line.startswith("DATABASE_URL="))
        urls.add(url)
    assert len(urls) == N, "every workspace has its own connection string"

    results = _finish([_spawn(neon_repo, fake_neon, "rm", n) for n in names])
    failures = [(n, rc, err) for n, (rc, err) in zip(names, results, strict=True) if rc != 0]
    fake_neon.fault_rate = 0.0
    assert not failures, failures
    assert registry(neon_repo)["workspaces"] == {}
    assert fake_neon.branch_names(PROJECT) == {}
    assert _worktrees(neon_repo) == set()
