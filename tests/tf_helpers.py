"""Helpers shared by the core suite: the registry, treefork's own records of the PostgreSQL clusters it runs,
and checks that a workspace left nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg

from conftest import git, run_tf


def home() -> Path:
    return Path(os.environ["TREEFORK_HOME"])


def cluster_records(repo: Path | None = None) -> list[dict[str, Any]]:
    """Every cluster record under the treefork home (of one repo, if given), passwords included."""
    rid = repo_id(repo) if repo is not None else None
    records = []
    for path in sorted((home() / "clusters").glob("*/cluster.json")):
        rec = json.loads(path.read_text())
        if rid is None or rec["repo_id"] == rid:
            records.append(rec)
    return records


def cluster_of(repo: Path, workspace: str) -> dict[str, Any] | None:
    found = [r for r in cluster_records(repo) if r["workspace"] == workspace]
    assert len(found) <= 1
    return found[0] if found else None


def cluster_dirs(repo: Path) -> set[str]:
    """Every directory under <home>/clusters whose name is one of this repo's cluster ids (record or not)."""
    rid = repo_id(repo)
    return {p.name for p in (home() / "clusters").glob(f"{rid}-*")}


def admin_url(rec: dict[str, Any], dbname: str = "postgres") -> str:
    return f"postgresql://postgres:{rec['admin_password']}@127.0.0.1:{rec['port']}/{dbname}"


def admin_conn(rec: dict[str, Any], dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(admin_url(rec, dbname), autocommit=True, connect_timeout=10)


def registry(repo: Path) -> dict:
    path = repo / ".git" / "treefork" / "registry.json"
    return json.loads(path.read_text())


def repo_id(repo: Path) -> str:
    rid = registry(repo)["repo_id"]
    assert rid
    return rid


def branches(repo: Path) -> set[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").stdout
    return {line for line in out.splitlines() if line}


def worktree_paths(repo: Path) -> set[Path]:
    out = git(repo, "worktree", "list", "--porcelain").stdout
    return {Path(line.split(" ", 1)[1]).resolve() for line in out.splitlines() if line.startswith("worktree ")}


def worktrees_dir(repo: Path) -> Path:
    return repo.parent / f"{repo.name}.worktrees"


def new(repo: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Path:
    """`treefork new --json`, returning the worktree path."""
    out = run_tf(repo, "new", name, "--json", *args, env=env).out
    data = json.loads(out)
    path = Path(data["path"])
    assert path.is_dir() and (path / ".git").exists()
    return path


def ls(cwd: Path) -> dict[str, dict]:
    rows = json.loads(run_tf(cwd, "ls", "--json").out)
    assert isinstance(rows, list)
    return {r["name"]: r for r in rows}


def gc_dry(repo: Path) -> list[dict]:
    data = json.loads(run_tf(repo, "gc", "--dry-run", "--json").out)
    assert data["dry_run"] is True
    return data["actions"]


def can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def assert_one_line_error(stderr: str, *needles: str) -> None:
    """Exactly one error line, the last line on stderr (progress lines may come before it), no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("treefork: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected a one-line error, got:\n{stderr}"
    assert "Traceback" not in stderr
    for n in needles:
        assert n in errors[0], f"{n!r} not in {errors[0]!r}"


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


def db_exists(db_branch: str) -> bool:
    """A database branch as `ls` names it (`<database>@<port>`) still has its cluster on disk."""
    for rec in cluster_records():
        if f"{rec['dbname']}@{rec['port']}" == db_branch:
            return (home() / "clusters" / rec["id"] / "data").is_dir()
    return False


def root_db(repo: Path) -> str:
    name = registry(repo)["root_db_branch"]
    assert name
    return name
