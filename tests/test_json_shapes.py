"""Every `--json` record is the one its shape in treefork/shapes.py declares, field for field and in order, and
docs/json.md says so (issue "The house": 15 commands promised stable field names and one record was documented)."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import git, run_tf
from treefork import shapes

ROOT = Path(__file__).resolve().parent.parent
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _expect(kind: str, record: Any) -> None:
    assert isinstance(record, dict), (kind, record)
    assert list(record) == ["schema_version", *shapes.SHAPES[kind].fields], kind
    assert record["schema_version"] == shapes.SCHEMA_VERSION


def _json(repo: Path, *args: str, rc: int = 0, env: dict[str, str] | None = None) -> Any:
    r = run_tf(repo, *args, "--json", check=False, env=env)
    assert r.rc == rc, (args, r.rc, r.err)
    return json.loads(r.out)


def test_json_docs_are_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_json_docs", ROOT / "scripts" / "gen_json_docs.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "json.md").read_text() == gen.render(), (
        "docs/json.md is stale: python scripts/gen_json_docs.py"
    )


def test_every_command_prints_its_declared_record(tf_server_repo: Path, tmp_path: Path) -> None:
    for action in _json(tf_server_repo, "install") + _json(tf_server_repo, "uninstall"):
        _expect("install action", action)
    _expect("init", init := _json(tf_server_repo, "init"))
    assert init["already_initialised"] is True
    _expect("new", made := _json(tf_server_repo, "new", "a"))
    assert ISO_UTC.match(made["created_at"]) and datetime.fromisoformat(made["created_at"]).tzinfo is not None
    _expect("new", _json(tf_server_repo, "sync", "a"))
    listed = _json(tf_server_repo, "ls")
    assert [r["name"] for r in listed] == ["root", "a"]
    for r in listed:
        _expect("workspace", r)
    _expect("workspace", _json(tf_server_repo, "ls", "a"))
    _expect("url", _json(tf_server_repo, "url", "a"))
    _expect("diff", same := _json(tf_server_repo, "diff", "a"))
    assert same["parent"] == "root" and same["changed"] is False
    for d in _json(tf_server_repo, "diff", "--all"):
        _expect("diff", d)
    gc = _json(tf_server_repo, "gc", "--dry-run")
    _expect("gc", gc)
    doctor = _json(tf_server_repo, "doctor")  # warnings only (hooks not installed): exit 0
    _expect("doctor", doctor)
    for check in doctor["checks"]:
        _expect("doctor check", check)
    wt = Path(made["path"])
    (wt / "f.txt").write_text("x\n")
    git(wt, "add", "f.txt")
    git(wt, "commit", "-q", "-m", "f")
    _expect("merge", merged := _json(tf_server_repo, "merge", "a", "--keep"))
    assert merged["parent"] == "root" and merged["removed"] is False
    for r in _json(tf_server_repo, "rm", "a"):
        _expect("removal", r)
        assert r["error"] is None
    status = _json(tf_server_repo, "server", "status")
    _expect("server status", status)
    _expect("server prune", _json(tf_server_repo, "server", "prune", "--dry-run"))
    (tmp_path / "home").mkdir()
    unit = _json(tf_server_repo, "server", "autostart", "--force", env={"HOME": str(tmp_path / "home")})
    _expect("autostart", unit)


def test_reset_gc_actions_and_clusters_name_workspaces_as_ls_does(tf_repo: Path) -> None:
    kept = _json(tf_repo, "new", "kept")
    _expect("reset", reset := _json(tf_repo, "reset", "kept"))
    assert reset["name"] == "kept" and reset["parent"] == "root" and reset["db_branch"] == kept["db_branch"]
    gone = _json(tf_repo, "new", "gone")
    git(tf_repo, "worktree", "remove", "--force", gone["path"])
    gc = _json(tf_repo, "gc", "--dry-run")
    assert [a["name"] for a in gc["actions"]] == ["gone"]
    for a in gc["actions"]:
        _expect("gc action", a)
    repo_dir = (tf_repo / ".git").resolve()
    mine = {
        c["name"]: c
        for c in _json(tf_repo, "server", "status")["clusters"]
        if c["repo_dir"] and Path(c["repo_dir"]).resolve() == repo_dir
    }
    assert set(mine) == {"root", "kept", "gone"}  # as `ls` names them: never "<root>"
    assert mine["kept"]["parent"] == "root" and mine["root"]["parent"] is None
    for c in mine.values():
        _expect("cluster", c)
        assert ISO_UTC.match(c["created_at"])
