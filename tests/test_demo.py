"""`treefork demo` says what it leaves behind: the repository it kept, and the PostgreSQL clusters still
running. Each test has a treefork home of its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_tf, server_clusters


def test_demo_tells_the_story_and_removes_every_cluster_it_made(tmp_path: Path, own_home: dict[str, str]) -> None:
    """A dev server's connection held on main; three agents' workspaces forked from it, each running its own
    migration in its own worktree against its own `.env`; isolation; `diff`; `merge` migrating main; cleanup;
    and what to run next."""
    env = own_home
    r = run_tf(tmp_path, "demo", "--json", env=env)
    report = json.loads(r.out)
    assert report["isolated"] is True
    assert [w["workspace"] for w in report["workspaces"]] == ["agent-1", "agent-2", "agent-3", "root (main)"]
    for w in report["workspaces"][:-1]:
        assert w["migrations"] == ["0001_notes", f"0002_{w['workspace'].replace('-', '_')}"], w
    assert report["workspaces"][-1]["migrations"] == ["0001_notes"], "main had none of theirs before the merge"
    assert "+    tags text[]" in report["diff"], "diff shows agent-1's schema change"
    assert report["merged"] == "agent-1" and report["main_after_merge"] == ["0001_notes", "0002_agent_1"]
    assert report["dev_server_kept"] is True, "main's dev server stayed connected through forks and merge"
    assert report["next"].startswith("next, in your own repository: cd your-app && treefork init")
    assert report["next"] in r.err
    assert report["kept"] is None and not Path(report["repo"]).exists()
    assert not Path(report["repo"] + ".worktrees").exists()
    assert "removed the demo repository and its PostgreSQL clusters" in r.err
    assert "kept" not in r.err
    assert server_clusters(tmp_path, env) == []


def test_demo_ignores_a_database_url_in_the_shell(tmp_path: Path, own_home: dict[str, str]) -> None:
    """The demo app reads its own `.env`: a DATABASE_URL exported in the user's shell is never migrated."""
    env = {**own_home, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/never_touch_this"}
    report = json.loads(run_tf(tmp_path, "demo", "--workspaces", "1", "--json", env=env).out)
    assert report["isolated"] and report["merged"] == "agent-1"


def test_demo_keep_says_where_and_leaves_the_server_running(tmp_path: Path, own_home: dict[str, str]) -> None:
    env = own_home
    r = run_tf(tmp_path, "demo", "--workspaces", "2", "--keep", "--json", env=env)
    report = json.loads(r.out)
    kept = Path(r.err.split("kept the demo repository in ", 1)[1].split()[0])
    try:
        assert Path(report["kept"]) == kept and (kept / ".git").is_dir()
        rows = json.loads(run_tf(kept, "ls", "--json", env=env).out)
        assert [w["name"] for w in rows] == ["root", "agent-2"]  # agent-1 was merged
        assert "its 2 PostgreSQL clusters are still running" in r.err
        assert report["servers_running"] == 2
        assert len([c for c in server_clusters(tmp_path, env) if c["running"]]) == 2
    finally:
        shutil.rmtree(kept.parent)
