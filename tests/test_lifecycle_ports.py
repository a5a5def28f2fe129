"""Ports of their own: bind-probed, stable, freed by rm (unique across 16 parallel `new` in 2 repositories:
tests/stress/test_concurrency.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import git, run_tf
from testing.repo import app_ports, with_ports


def test_a_worktree_removed_behind_treeforks_back_frees_its_ports(tf_server_repo: Path) -> None:
    repo = with_ports(tf_server_repo)
    env = {"TREEFORK_PORT_RANGE": "28500-28540"}
    a = Path(run_tf(repo, "new", "a", env=env).out.strip().splitlines()[-1])
    first = app_ports(a)
    git(repo, "worktree", "remove", "--force", str(a))
    b = Path(run_tf(repo, "new", "b", env=env).out.strip().splitlines()[-1])
    assert app_ports(b) == first


def _listening_below_the_ephemeral_ports() -> socket.socket:
    """A listening socket on a port of 28600-28699. Ports from the kernel's ephemeral range (32768 up) would
    not do: any outgoing connection of the other tests may take one of them for a moment, and the bind probe
    rightly skips it."""
    for port in range(28600, 28700):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        s.listen()
        return s
    raise AssertionError("no free port in 28600-28699")


def test_ports_skip_bound_ones_stay_stable_and_are_freed_by_rm(tf_server_repo: Path) -> None:
    repo = with_ports(tf_server_repo)
    with _listening_below_the_ephemeral_ports() as blocker:
        busy = blocker.getsockname()[1]
        env = {"TREEFORK_PORT_RANGE": f"{busy}-{busy + 40}"}
        a = Path(run_tf(repo, "new", "a", env=env).out.strip().splitlines()[-1])
        first = app_ports(a)
        assert busy not in first.values()  # bind-probed
        run_tf(repo, "new", "a", env=env)  # a re-run keeps them
        assert app_ports(a) == first
        run_tf(repo, "rm", "a", env=env)
        b = Path(run_tf(repo, "new", "b", env=env).out.strip().splitlines()[-1])
        assert app_ports(b) == first  # freed by rm, so the lowest free ones again


def test_finding_27_a_moved_worktree_keeps_its_ports(tf_server_repo: Path) -> None:
    """Ports belong to the workspace, not its path: after `git worktree move`, the next `new` gets others."""
    from testing.cli import ls

    repo = with_ports(tf_server_repo)
    env = {"TREEFORK_PORT_RANGE": "28550-28590"}
    p1 = Path(run_tf(repo, "new", "p1", env=env).out.strip().splitlines()[-1])
    first = app_ports(p1)
    moved = repo.parent / "moved-p1"
    git(repo, "worktree", "move", str(p1), str(moved))
    p2 = Path(run_tf(repo, "new", "p2", env=env).out.strip().splitlines()[-1])
    assert set(app_ports(p2).values()).isdisjoint(first.values())
    assert app_ports(moved) == first and ls(repo)["p1"]["ports"] == first
    run_tf(repo, "rm", "p1", "--force", env=env)  # rm frees them, wherever the worktree now is
    p3 = Path(run_tf(repo, "new", "p3", env=env).out.strip().splitlines()[-1])
    assert app_ports(p3) == first
