"""Load: many treefork processes at once. Nothing lost, nothing orphaned, nothing duplicated."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dotenv import dotenv_values

from conftest import run_tf
from testing.checks import assert_consistent, assert_empty
from testing.cli import last_line, ls, new, popen_tf
from testing.repo import app_ports, git_worktrees, ports_repo
from testing.server import marked_databases

pytestmark = pytest.mark.stress

N = 16


def _wait_all(procs, timeout: float = 240):
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out, err))
    return results


def _check_failure_is_clear(rc: int, err: str) -> None:
    line = last_line(err)
    assert rc == 1, f"rc {rc}: {err}"
    assert line.startswith("treefork: error:"), f"unclear failure: {err!r}"
    assert "Traceback" not in err


def test_sixteen_parallel_new_then_sixteen_parallel_rm(tf_repo: Path, main_env: bytes) -> None:
    names = [f"agent-{i:02d}" if i % 2 else f"team/agent-{i:02d}" for i in range(N)]
    procs = [popen_tf(tf_repo, "new", name, "--json") for name in names]
    results = _wait_all(procs)

    created = set()
    for name, (rc, out, err) in zip(names, results, strict=True):
        if rc == 0:
            ws = json.loads(out)
            assert ws["name"] == name and ws["status"] == "ready", ws
            created.add(name)
        else:
            _check_failure_is_clear(rc, err)
    # treefork serialises the git steps and retries git's own race: every one must succeed
    assert created == set(names), {n: r for n, r in zip(names, results, strict=True) if n not in created}

    rows = assert_consistent(tf_repo, main_env)
    assert {r["name"] for r in rows} == set(names)
    assert len({r["db_branch"] for r in rows}) == N
    assert len({r["path"] for r in rows}) == N

    procs = [popen_tf(tf_repo, "rm", name) for name in names]
    results = _wait_all(procs)
    for name, (rc, _, err) in zip(names, results, strict=True):
        assert rc == 0, f"rm {name} failed ({rc}): {err}"
    assert_empty(tf_repo)
    # the branches were merged (no commits on them), so rm deleted them too
    branches = run_git_branches(tf_repo)
    assert branches == ["main"], branches
    assert (tf_repo / ".env").read_bytes() == main_env


def run_git_branches(repo: Path) -> list[str]:
    from conftest import git

    return sorted(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").stdout.split())


def test_parallel_new_of_the_same_name_makes_one_workspace(tf_repo: Path, main_env: bytes) -> None:
    procs = [popen_tf(tf_repo, "new", "same", "--json") for _ in range(6)]
    results = _wait_all(procs)
    ok = [r for r in results if r[0] == 0]
    for rc, _, err in results:
        if rc != 0:
            _check_failure_is_clear(rc, err)
    assert ok, results
    assert len({json.loads(out)["db_branch"] for _, out, _ in ok}) == 1
    rows = assert_consistent(tf_repo, main_env)
    assert [r["name"] for r in rows] == ["same"]
    # a re-run after the dust settles is idempotent
    run_tf(tf_repo, "new", "same")
    assert_consistent(tf_repo, main_env)
    run_tf(tf_repo, "rm", "same")
    assert_empty(tf_repo)


def test_gc_running_during_parallel_new_drops_nothing_in_flight(tf_repo: Path, main_env: bytes) -> None:
    names = [f"busy-{i}" for i in range(6)]
    procs = [popen_tf(tf_repo, "new", name) for name in names]
    gcs = [popen_tf(tf_repo, "gc", "--json") for _ in range(3)]
    results = _wait_all(procs)
    gc_results = _wait_all(gcs)
    for (rc, _, err), name in zip(results, names, strict=True):
        assert rc == 0, f"new {name} failed while gc ran: {err}"
    for rc, out, err in gc_results:
        assert rc == 0, err
        assert [a for a in json.loads(out)["actions"] if a["done"]] == [], out
    rows = assert_consistent(tf_repo, main_env)
    assert {r["name"] for r in rows} == set(names)
    procs = [popen_tf(tf_repo, "rm", *names[:3]), popen_tf(tf_repo, "rm", *names[3:])]
    for rc, _, err in _wait_all(procs):
        assert rc == 0, err
    assert_empty(tf_repo)
    assert git_worktrees(tf_repo) == [] and marked_databases(tf_repo) == []


def test_sixteen_parallel_new_in_two_repos_get_distinct_ports(tmp_path: Path) -> None:
    repos = [ports_repo(tmp_path / "one"), ports_repo(tmp_path / "two")]
    jobs = [(repos[i % 2], f"w{i}") for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        paths = list(pool.map(lambda job: new(*job), jobs))
    seen = [port for p in paths for port in app_ports(p).values()]
    assert len(seen) == 32 and len(set(seen)) == 32
    assert all(p != 0 for p in seen)
    rows = ls(repos[0])
    assert rows["w0"]["ports"] == app_ports(paths[0])  # shown in ls
    assert "PORT" not in dotenv_values(repos[0] / ".env")  # never the main worktree's
