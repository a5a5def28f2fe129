"""Neon's side of reset, diff and the merge's safety net, on the restore and compare_schema endpoints.

- reset: `POST /branches/{id}/restore {"source_branch_id": <source>}`: the branch keeps its id, compute
  and role passwords, so its URL does not change (what `neonctl branches reset --parent` sends).
- snapshot: a child branch of the branch, without a compute (`POST /branches` without endpoints).
- restore: `POST /branches/{id}/restore` from the snapshot. The branch has children (the snapshot at
  least), and Neon then requires `preserve_under_name`: the state being discarded is kept under that name
  and the branch's children move to it. treefork deletes the snapshot and, when it has no other child,
  that preserved branch; otherwise it says which branch was kept.
- diff: `GET /branches/{id}/compare_schema?base_branch_id=&db_name=`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from treefork import platform
from treefork.backends.base import NEON, DbBranch
from treefork.backends.neon.api import NeonApiError
from treefork.errors import BackendError, FatalError

if TYPE_CHECKING:
    from treefork.backends.neon import NeonBackend

SNAPSHOT_MARK = "<snapshot>"
PRESERVED = "preserved_branch_ids"  # backend setting: branches a restore kept, deleted with their last child


def reset_branch(nb: NeonBackend, branch: DbBranch, *, source: DbBranch) -> DbBranch:
    children = [b["name"] for b in nb._list_all() if b.get("parent_id") == branch.id]
    if children:
        raise FatalError(
            f"Neon branch {branch.name} has child branches ({', '.join(sorted(children))}); a reset would move them",
            hint="remove the stacked workspaces first (treefork rm <child>), then reset",
        )
    nb.ctx.progress(f"resetting Neon branch {branch.name} to {source.name}")
    result = nb.api.post(f"{nb._base}/branches/{branch.id}/restore", {"source_branch_id": source.id})
    nb._wait_operations(result.get("operations", []), what=f"resetting {branch.name}")
    nb._branches = None
    return branch


def schema_diff(nb: NeonBackend, branch: DbBranch, *, base: DbBranch) -> str:
    params = {"base_branch_id": base.id, "db_name": _database_name(nb, branch)}
    return str(nb.api.get(f"{nb._base}/branches/{branch.id}/compare_schema", params).get("diff") or "")


def _snapshot_name(branch: DbBranch, tag: str) -> str:
    return f"{branch.name}-treefork-snapshot-{tag}"[-256:]


def snapshot(nb: NeonBackend, branch: DbBranch, *, tag: str) -> DbBranch:
    name = _snapshot_name(branch, tag)
    body: dict[str, Any] = {
        "branch": {"name": name, "parent_id": branch.id},
        "annotation_value": {
            "treefork": "1",
            "treefork_repo": nb.ctx.repo_id,
            "treefork_workspace": SNAPSHOT_MARK,
            "treefork_pid": str(os.getpid()),  # while this merge runs, `gc` leaves the snapshot alone
        },
    }
    nb.ctx.progress(f"snapshotting Neon branch {branch.name}")
    try:
        created = nb.api.post(f"{nb._base}/branches", body)
    except NeonApiError as e:
        raise BackendError(
            f"cannot snapshot Neon branch {branch.name} before migrating: {e.message}",
            hint="Neon refuses children of an expiring branch: remove its TTL, or merge without `migrate`",
        ) from None
    nb._wait_operations(created.get("operations", []), what=f"snapshot {name}")
    nb._branches = None
    return DbBranch(name=name, id=created["branch"]["id"], workspace=SNAPSHOT_MARK, clone_method=NEON)


def find_snapshot_or_none(nb: NeonBackend, branch: DbBranch, *, tag: str) -> DbBranch | None:
    name = _snapshot_name(branch, tag)
    for b in nb._list_all():
        if b["name"] == name:
            return DbBranch(name=name, id=b["id"], workspace=SNAPSHOT_MARK, clone_method=NEON)
    return None


def restore(nb: NeonBackend, branch: DbBranch, *, snapshot: DbBranch) -> None:
    preserved = f"{branch.name}-before-restore-{int(time.time())}"[-256:]
    nb.ctx.progress(f"restoring Neon branch {branch.name} from {snapshot.name}")
    body = {"source_branch_id": snapshot.id, "preserve_under_name": preserved}
    result = nb.api.post(f"{nb._base}/branches/{branch.id}/restore", body)
    nb._wait_operations(result.get("operations", []), what=f"restoring {branch.name}")
    nb._branches = None
    drop_snapshot(nb, snapshot)
    _drop_preserved(nb, preserved)


def drop_snapshot(nb: NeonBackend, snap: DbBranch) -> None:
    nb.delete_branch(DbBranch(name=snap.name, id=snap.id, workspace=SNAPSHOT_MARK, clone_method=NEON))


def _drop_preserved(nb: NeonBackend, name: str) -> None:
    branches = nb._list_all()
    kept = next((b for b in branches if b["name"] == name), None)
    if kept is None:
        return
    if any(b.get("parent_id") == kept["id"] for b in branches):
        nb.ctx.progress(
            f"Neon kept the discarded state as branch {name}, now the parent of the workspaces' branches; "
            "treefork deletes it when the last of them is removed"
        )
        recorded = nb.ctx.change_settings(lambda s: s.setdefault(PRESERVED, []).append(kept["id"]))
        nb.ctx.settings[PRESERVED] = list(recorded[PRESERVED])
        return
    result = nb.api.delete(f"{nb._base}/branches/{kept['id']}")
    nb._branches = None
    if result:
        nb._wait_operations(result.get("operations", []), what=f"deleting {name}")


def in_use_snapshot(annotation: dict[str, str] | None) -> bool:
    """A snapshot whose merge is still running (its process is alive): not an orphan for `gc`."""
    a = annotation or {}
    pid = a.get("treefork_pid") or ""
    return a.get("treefork_workspace") == SNAPSHOT_MARK and pid.isdigit() and platform.process_alive(int(pid))


def drop_preserved_if_childless(nb: NeonBackend, parent_id: str | None) -> None:
    """After a delete: the branch a restore preserved goes once its last child (a workspace's branch) is gone."""
    if not parent_id or parent_id not in (nb.ctx.settings.get(PRESERVED) or []):
        return
    if any(b.get("parent_id") == parent_id for b in nb._list_all()):
        return
    result = nb.api.delete(f"{nb._base}/branches/{parent_id}")
    nb._branches = None
    recorded = nb.ctx.change_settings(
        lambda s: s.update({PRESERVED: [i for i in s.get(PRESERVED, []) if i != parent_id]})
    )
    nb.ctx.settings[PRESERVED] = list(recorded[PRESERVED])
    if result:
        nb._wait_operations(result.get("operations", []), what="deleting the branch a restore preserved")


def _database_name(nb: NeonBackend, branch: DbBranch) -> str:
    if nb._database:
        return nb._database
    databases = nb.api.get(f"{nb._base}/branches/{branch.id}/databases").get("databases", [])
    if len(databases) != 1:
        raise BackendError(
            f"cannot choose a database on Neon branch {branch.name} for the schema diff",
            hint="set database = '...' in the [neon] table of treefork.toml",
        )
    return str(databases[0]["name"])
