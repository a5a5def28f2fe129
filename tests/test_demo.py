"""`treefork demo` says what it leaves behind: the repository it kept, and the PostgreSQL clusters still
running. Each test has a treefork home of its own."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_tf, share_what_is_made_once


@pytest.fixture
def own_home() -> Iterator[dict[str, str]]:
    """A treefork home with no server in it (under the temp dir, which the server's user can reach as root)."""
    home = Path(tempfile.mkdtemp(prefix="treefork-test-demo-home-"))
    share_what_is_made_once(home)
    env = {"TREEFORK_HOME": str(home)}
    yield env
    run_tf(home, "server", "stop", env=env, check=False)
    shutil.rmtree(home, ignore_errors=True)


def _clusters(cwd: Path, env: dict[str, str]) -> list[dict]:
    return list(json.loads(run_tf(cwd, "server", "status", "--json", env=env).out)["clusters"])


def test_demo_proves_isolation_and_removes_every_cluster_it_made(tmp_path: Path, own_home: dict[str, str]) -> None:
    env = own_home
    r = run_tf(tmp_path, "demo", "--workspaces", "2", "--json", env=env)
    report = json.loads(r.out)
    assert report["isolated"] is True
    assert [w["workspace"] for w in report["workspaces"]] == ["agent-1", "agent-2", "root (main)"]
    assert report["workspaces"][0]["sees"] == ["seed", "agent-1"]
    assert report["workspaces"][-1]["sees"] == ["seed"]
    assert report["kept"] is None and not Path(report["repo"]).exists()
    assert "removed the demo repository and its PostgreSQL clusters" in r.err
    assert "kept" not in r.err
    assert _clusters(tmp_path, env) == []


def test_demo_keep_says_where_and_leaves_the_server_running(tmp_path: Path, own_home: dict[str, str]) -> None:
    env = own_home
    r = run_tf(tmp_path, "demo", "--workspaces", "1", "--keep", "--json", env=env)
    report = json.loads(r.out)
    kept = Path(r.err.split("kept the demo repository in ", 1)[1].split()[0])
    try:
        assert Path(report["kept"]) == kept and (kept / ".git").is_dir()
        assert [w["name"] for w in json.loads(run_tf(kept, "ls", "--json", env=env).out)] == ["root", "agent-1"]
        assert "its 2 PostgreSQL clusters are still running" in r.err
        assert report["servers_running"] == 2
        assert len([c for c in _clusters(tmp_path, env) if c["running"]]) == 2
    finally:
        shutil.rmtree(kept.parent)
