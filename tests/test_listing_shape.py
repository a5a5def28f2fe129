"""One JSON shape for a workspace: `new --json`, `sync --json` and `ls --json` print the same fields with the
same values (src/treefork/shapes.py), documented in docs/json.md."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_tf
from treefork.workspace.views import FIELDS

ROOT = Path(__file__).resolve().parent.parent


def test_new_sync_and_ls_print_one_shape(tf_repo: Path) -> None:
    made = json.loads(run_tf(tf_repo, "new", "shape", "--json").out)
    synced = json.loads(run_tf(tf_repo, "sync", "shape", "--json").out)
    listed = json.loads(run_tf(tf_repo, "ls", "shape", "--json").out)
    listed = listed[0] if isinstance(listed, list) else listed
    assert set(listed) == {"schema_version", *FIELDS}
    assert set(made) == set(synced) == {"schema_version", *FIELDS, "env_file", "seconds", "existed"}
    assert synced["seconds"] is None and made["seconds"] is not None
    for key in ("name", "parent", "path", "branch", "db_branch", "clone_method", "status", "server"):
        assert made[key] == synced[key] == listed[key], key
    assert made["parent"] == "root" and "pid" not in made and "created_worktree" not in made


def test_every_field_is_documented() -> None:
    doc = (ROOT / "docs" / "json.md").read_text()
    assert [f for f in FIELDS if f"`{f}`" not in doc] == []
