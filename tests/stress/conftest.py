"""Helpers for the stress suite: treefork's records of its clusters, and the three-way consistency check
(registry vs `git worktree list` vs the clusters recorded for the repo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from conftest import ENV_SAMPLE, git, run_tf

SECRET_KEYS = ("NEON_API_KEY",)
URL_VAR = "DATABASE_URL"


def home() -> Path:
    return Path(os.environ["TREEFORK_HOME"])


def cluster_records(repo: Path) -> list[dict]:
    rid = repo_id(repo)
    return [json.loads(p.read_text()) for p in sorted((home() / "clusters").glob(f"{rid}-*/cluster.json"))]


def root_cluster(repo: Path) -> dict:
    return next(r for r in cluster_records(repo) if r["workspace"] == "<root>")


def registry_file(repo: Path) -> Path:
    return repo / ".git" / "treefork" / "registry.json"


def repo_id(repo: Path) -> str:
    return json.loads(registry_file(repo).read_text())["repo_id"]


def marked_databases(repo: Path) -> list[tuple[str, str]]:
    """(database branch as `ls` names it, workspace) for every finished cluster treefork recorded for this repo,
    the root excluded."""
    return [
        (f"{r['dbname']}@{r['port']}", r["workspace"])
        for r in cluster_records(repo)
        if r["workspace"] != "<root>" and r["status"] == "ready"
    ]


def unmarked_databases(repo: Path) -> list[str]:
    """This repo's cluster directories that are not a finished, recorded cluster: what a crash mid-fork would
    leave if nothing cleaned it up. There must never be any once the dust settles."""
    rid = repo_id(repo)
    left = []
    for d in sorted((home() / "clusters").glob(f"{rid}-*")):
        rec = d / "cluster.json"
        if not rec.exists() or json.loads(rec.read_text())["status"] != "ready":
            left.append(d.name)
    return left


def db_branch_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.path.lstrip('/')}@{parts.port}"


def git_worktrees(repo: Path) -> list[Path]:
    """Linked worktrees (the main one excluded), as resolved paths."""
    out = git(repo, "worktree", "list", "--porcelain").stdout
    paths = [Path(line[len("worktree ") :]).resolve() for line in out.splitlines() if line.startswith("worktree ")]
    return paths[1:]


def ls_json(repo: Path) -> list[dict]:
    rows = json.loads(run_tf(repo, "ls", "--json").out)
    assert rows[0]["is_root"] and rows[0]["name"] == "root"
    return rows[1:]


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
    raw = env.read_bytes()
    text = raw.decode("utf-8")  # must be UTF-8
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


def assert_consistent(repo: Path, main_env: bytes | None = None, *, allow_not_ready: bool = False) -> list[dict]:
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
    gc = json.loads(run_tf(repo, "gc", "--dry-run", "--json").out)
    assert gc["actions"] == [], gc
    return rows


def assert_empty(repo: Path) -> None:
    assert ls_json(repo) == []
    assert git_worktrees(repo) == []
    assert marked_databases(repo) == []
    assert unmarked_databases(repo) == []


def popen_tf(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "treefork", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def assert_clear_error(r, *, contains: str | None = None) -> str:
    assert r.rc != 0, f"expected failure, got rc 0\nstdout: {r.out}\nstderr: {r.err}"
    assert r.rc in (1, 2), f"rc {r.rc} (3 = a bug):\n{r.err}"
    line = last_line(r.err)
    assert line.startswith("treefork: error:") or line.startswith("Error:"), f"not a clear error: {r.err!r}"
    assert "Traceback" not in r.err, r.err
    if contains:
        assert contains.lower() in r.err.lower(), f"{contains!r} not in {r.err!r}"
    return line


@pytest.fixture
def main_env(tf_repo: Path) -> bytes:
    return (tf_repo / ".env").read_bytes()


__all__ = ["ENV_SAMPLE"]
