"""What treefork's records say about the PostgreSQL clusters it runs (one per workspace and root), read
straight from the files under the treefork home, whatever the CLI says."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from testing.repo import repo_id


def home() -> Path:
    return Path(os.environ["TREEFORK_HOME"])


def cluster_records(repo: Path | None = None) -> list[dict[str, Any]]:
    """Every cluster record under the treefork home (of one repo, if given), passwords included."""
    rid = repo_id(repo) if repo is not None else None
    records = []
    for path in sorted((home() / "clusters").glob("*/cluster.json")):
        rec: dict[str, Any] = json.loads(path.read_text())
        if rid is None or rec["repo_id"] == rid:
            records.append(rec)
    return records


def cluster_of(repo: Path, workspace: str) -> dict[str, Any] | None:
    found = [r for r in cluster_records(repo) if r["workspace"] == workspace]
    assert len(found) <= 1
    return found[0] if found else None


def root_cluster(repo: Path) -> dict[str, Any]:
    rec = cluster_of(repo, "<root>")
    assert rec is not None
    return rec


def cluster_dirs(repo: Path) -> set[str]:
    """Every directory under <home>/clusters named for one of this repo's clusters (record or not)."""
    return {p.name for p in (home() / "clusters").glob(f"{repo_id(repo)}-*")}


def admin_url(rec: dict[str, Any], dbname: str = "postgres") -> str:
    return f"postgresql://postgres:{rec['admin_password']}@127.0.0.1:{rec['port']}/{dbname}"


def admin_conn(rec: dict[str, Any], dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(admin_url(rec, dbname), autocommit=True, connect_timeout=10)


def db_branch_of(url: str) -> str:
    """A database URL's branch as `ls` names it: `<database>@<port>`."""
    parts = urlsplit(url)
    return f"{parts.path.lstrip('/')}@{parts.port}"


def db_exists(db_branch: str) -> bool:
    """A database branch as `ls` names it (`<database>@<port>`) still has its cluster on disk."""
    for rec in cluster_records():
        if f"{rec['dbname']}@{rec['port']}" == db_branch:
            return (home() / "clusters" / rec["id"] / "data").is_dir()
    return False


def can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def marked_databases(repo: Path) -> list[tuple[str, str]]:
    """(database branch, workspace) for every finished cluster treefork recorded for this repo, root excluded."""
    return [
        (f"{r['dbname']}@{r['port']}", r["workspace"])
        for r in cluster_records(repo)
        if r["workspace"] != "<root>" and r["status"] == "ready"
    ]


def unmarked_databases(repo: Path) -> list[str]:
    """This repo's cluster directories that are not a finished, recorded cluster: what a crash mid-fork would
    leave if nothing cleaned it up. There must never be any once the dust settles."""
    left = []
    for d in sorted((home() / "clusters").glob(f"{repo_id(repo)}-*")):
        rec = d / "cluster.json"
        if not rec.exists() or json.loads(rec.read_text())["status"] != "ready":
            left.append(d.name)
    return left
