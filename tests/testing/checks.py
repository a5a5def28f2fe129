"""Whole-state checks: registry, git and the backend agree exactly; a workspace left nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from testing.cli import gc_dry, ls_json
from testing.repo import branches, git_worktrees, registry, repo_id, worktree_paths, worktrees_dir
from testing.server import cluster_dirs, cluster_of, db_branch_of, marked_databases, unmarked_databases

SECRET_KEYS = ("NEON_API_KEY",)
URL_VAR = "DATABASE_URL"


def expected_env_lines(main_env: bytes) -> list[str]:
    """The main .env's lines that every worktree .env must keep verbatim."""
    text = main_env.decode("utf-8").removeprefix("\ufeff")
    keep = []
    for line in text.splitlines():
        stripped = line.strip()
        key = stripped.removeprefix("export ").split("=", 1)[0].strip()
        if stripped and "=" in stripped and key in (URL_VAR, *SECRET_KEYS):
            continue
        keep.append(line)
    return keep


def check_worktree_env(wt: Path, main_env: bytes, expected_db: str) -> None:
    env = wt / ".env"
    assert env.is_file(), f"{env} missing"
    assert (env.stat().st_mode & 0o777) == 0o600, oct(env.stat().st_mode)
    leftovers = [p.name for p in wt.iterdir() if p.name.startswith(".env.") and p.name.endswith(".tmp")]
    assert not leftovers, f"temp files left in {wt}: {leftovers}"
    text = env.read_bytes().decode("utf-8")  # must be UTF-8
    body_lines = text.removeprefix("\ufeff").splitlines()
    for line in expected_env_lines(main_env):
        assert line in body_lines, f"{env} lost line {line!r}:\n{text}"
    values = dotenv_values(env)
    url = values.get(URL_VAR)
    assert url and db_branch_of(url) == expected_db, f"{env}: DATABASE_URL={url!r}, expected db {expected_db}"
    for key in SECRET_KEYS:
        assert key not in values, f"{env} kept secret key {key}"
    # every DATABASE_URL binding (not just the last one) points at this workspace's database
    for line in body_lines:
        s = line.strip().removeprefix("export ").strip()
        if s.startswith(URL_VAR + "=") or s.startswith(URL_VAR + " ="):
            port = expected_db.rsplit("@", 1)[1]
            assert f":{port}/" in line, f"{env}: a {URL_VAR} line does not point at {expected_db}: {line!r}"


def assert_consistent(
    repo: Path, main_env: bytes | None = None, *, allow_not_ready: bool = False
) -> list[dict[str, Any]]:
    """Registry, git and backend agree exactly; every worktree's env is intact. Returns the ls rows."""
    main_env = (repo / ".env").read_bytes() if main_env is None else main_env
    rows = ls_json(repo)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)), f"duplicate registry entries: {names}"
    reg_paths = sorted(Path(r["path"]).resolve() for r in rows)
    wts = sorted(git_worktrees(repo))
    assert reg_paths == wts, f"registry paths {reg_paths} != git worktrees {wts}"
    dbs = marked_databases(repo)
    db_names = [d for d, _ in dbs]
    assert len(db_names) == len(set(db_names)), f"duplicate databases {db_names}"
    assert sorted(db_names) == sorted(r["db_branch"] for r in rows), (
        f"databases {sorted(dbs)} != registry {[(r['name'], r['db_branch']) for r in rows]}"
    )
    assert unmarked_databases(repo) == []
    by_ws = {w: d for d, w in dbs}
    for r in rows:
        if not allow_not_ready:
            assert r["status"] == "ready", r
        assert r["worktree"] == "present", r
        assert by_ws.get(r["name"]) == r["db_branch"], (r, by_ws)
        check_worktree_env(Path(r["path"]), main_env, r["db_branch"])
    assert gc_dry(repo) == []
    return rows


def assert_empty(repo: Path) -> None:
    assert ls_json(repo) == []
    assert git_worktrees(repo) == []
    assert marked_databases(repo) == []
    assert unmarked_databases(repo) == []


def assert_nothing_left(repo: Path, name: str, *, branch: str | None = None, path: Path | None = None) -> None:
    """No worktree dir, no registry entry, no branch, no cluster (record or data directory) for workspace `name`."""
    from treefork.backends.local.store import cluster_id

    branch = branch if branch is not None else name
    path = path or worktrees_dir(repo) / name.replace("/", "+")
    assert not path.exists(), f"{path} was left behind"
    assert path.resolve() not in worktree_paths(repo)
    assert name not in registry(repo)["workspaces"]
    assert branch not in branches(repo)
    assert cluster_of(repo, name) is None
    assert cluster_id(repo_id(repo), name) not in cluster_dirs(repo), "a cluster directory was left behind"
    assert gc_dry(repo) == []
