"""`treefork server prune` removes the clusters of repositories that were deleted or initialised again, and
`server start` no longer starts them; clusters an older treefork recorded without their repository are listed
and kept unless --force. Each test has a treefork home of its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import make_repo, run_tf, server_clusters


def _initialised(where: Path, env: dict[str, str], *workspaces: str) -> set[str]:
    repo = make_repo(where)
    run_tf(repo, "init", "--no-import", env=env)
    for name in workspaces:
        run_tf(repo, "new", name, env=env)
    return {c["id"] for c in server_clusters(repo, env) if c["repo_dir"] == str((repo / ".git").resolve())}


def test_prune_removes_the_clusters_of_deleted_and_reinitialised_repositories(
    tmp_path: Path, own_home: dict[str, str]
) -> None:
    env = own_home
    kept = _initialised(tmp_path / "kept", env, "k")
    deleted = _initialised(tmp_path / "deleted", env, "d")
    again = tmp_path / "again"
    first = _initialised(again, env)
    assert len(kept) == 2 and len(deleted) == 2 and len(first) == 1
    shutil.rmtree(tmp_path / "deleted")
    shutil.rmtree(tmp_path / "deleted.worktrees")
    shutil.rmtree(again / ".git" / "treefork")  # and `treefork init` again: a new repository id, a new root
    run_tf(again, "init", "--no-import", env=env)
    second = {c["id"] for c in server_clusters(again, env) if c["repo_dir"]} - kept - deleted - first

    run_tf(tmp_path, "server", "stop", env=env)
    run_tf(tmp_path, "server", "start", env=env)
    running = {c["id"] for c in server_clusters(tmp_path, env) if c["running"]}
    assert running == kept | second, "server start leaves the clusters of gone repositories alone"

    dry = json.loads(run_tf(tmp_path, "server", "prune", "--dry-run", "--json", env=env).out)
    assert {r["id"]: r["repository"] for r in dry["removed"]} == {
        **dict.fromkeys(deleted, "gone"),
        **dict.fromkeys(first, "re-initialised"),
    }
    assert {c["id"] for c in server_clusters(tmp_path, env)} == kept | deleted | first | second, (
        "--dry-run removes nothing"
    )

    r = run_tf(tmp_path, "server", "prune", env=env)
    assert f"removed {sorted(deleted)[0]}" in r.err and "is gone" in r.err
    assert {c["id"] for c in server_clusters(tmp_path, env)} == kept | second
    home = Path(env["TREEFORK_HOME"]) / "clusters"
    assert {p.name for p in home.iterdir()} == kept | second, "their files are gone too"
    assert run_tf(tmp_path / "kept", "url", "k", env=env).rc == 0


def test_prune_keeps_clusters_whose_repository_is_not_recorded_unless_forced(
    tmp_path: Path, own_home: dict[str, str]
) -> None:
    """A record of an older treefork does not say where its repository is: never removed without --force."""
    env = own_home
    ids = _initialised(tmp_path / "old", env)
    (root_id,) = ids
    record = Path(env["TREEFORK_HOME"]) / "clusters" / root_id / "cluster.json"
    data = json.loads(record.read_text())
    del data["repo_dir"]
    record.write_text(json.dumps(data))
    shutil.rmtree(tmp_path / "old")
    r = run_tf(tmp_path, "server", "prune", env=env)
    assert "no cluster whose repository is gone" in r.err and "kept 1 cluster(s)" in r.err and root_id in r.err
    assert root_id in {c["id"] for c in server_clusters(tmp_path, env)}
    report = json.loads(run_tf(tmp_path, "server", "prune", "--force", "--json", env=env).out)
    assert [x["id"] for x in report["removed"]] == [root_id] and report["removed"][0]["repository"] == "unknown"
    assert server_clusters(tmp_path, env) == []
