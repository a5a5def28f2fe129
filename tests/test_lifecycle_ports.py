"""Ports of their own: unique across 16 parallel `new` in 2 repositories, bind-probed, stable, freed by rm."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dotenv import dotenv_values

from conftest import git, make_repo, run_tf
from tf_helpers import ls, new

VARS = ("PORT", "VITE_PORT")


def _ports_repo(root: Path) -> Path:
    repo = make_repo(root)
    (repo / "treefork.toml").write_text('ports = ["PORT", "VITE_PORT"]\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "ports")
    run_tf(repo, "init", "--no-import")
    return repo


def _ports(worktree: Path) -> dict[str, int]:
    env = dotenv_values(worktree / ".env")
    return {v: int(env[v] or 0) for v in VARS}


def test_sixteen_parallel_new_in_two_repos_get_distinct_ports(tmp_path: Path) -> None:
    repos = [_ports_repo(tmp_path / "one"), _ports_repo(tmp_path / "two")]
    jobs = [(repos[i % 2], f"w{i}") for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        paths = list(pool.map(lambda job: new(*job), jobs))
    seen = [port for p in paths for port in _ports(p).values()]
    assert len(seen) == 32 and len(set(seen)) == 32
    assert all(p != 0 for p in seen)
    rows = ls(repos[0])
    assert rows["w0"]["ports"] == _ports(paths[0])  # shown in ls
    assert "PORT" not in dotenv_values(repos[0] / ".env")  # never the main worktree's


def test_a_worktree_removed_behind_treeforks_back_frees_its_ports(tmp_path: Path) -> None:
    repo = _ports_repo(tmp_path / "app")
    env = {"TREEFORK_PORT_RANGE": "28500-28540"}
    a = Path(run_tf(repo, "new", "a", env=env).out.strip().splitlines()[-1])
    first = _ports(a)
    git(repo, "worktree", "remove", "--force", str(a))
    b = Path(run_tf(repo, "new", "b", env=env).out.strip().splitlines()[-1])
    assert _ports(b) == first


def test_ports_skip_bound_ones_stay_stable_and_are_freed_by_rm(tmp_path: Path) -> None:
    repo = _ports_repo(tmp_path / "app")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        env = {"TREEFORK_PORT_RANGE": f"{busy}-{busy + 40}"}
        a = Path(run_tf(repo, "new", "a", env=env).out.strip().splitlines()[-1])
        first = _ports(a)
        assert busy not in first.values()  # bind-probed
        run_tf(repo, "new", "a", env=env)  # a re-run keeps them
        assert _ports(a) == first
        run_tf(repo, "rm", "a", env=env)
        b = Path(run_tf(repo, "new", "b", env=env).out.strip().splitlines()[-1])
        assert _ports(b) == first  # freed by rm, so the lowest free ones again
