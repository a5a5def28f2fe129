"""A merge's recorded intent, and finishing or undoing one that was interrupted (docs/lifecycle.md).

Before `merge` changes anything it records, in the registry: the workspace, the parent and its worktree, the
parent's head before, the commit being merged and a tag that names the trial fork and the snapshot before
either exists. Each step then advances `step`:

  started    the git merge may have happened; the parent's database is untouched
  trial      the migration runs on a fork of the parent's database; the parent is untouched
  snapshot   the parent's snapshot is being taken; the parent is untouched
  migrating  the migration runs on the parent itself: only the snapshot can put it back
  restoring  the parent's database is being put back from the snapshot
  migrated   the parent is migrated: what is left is dropping the snapshot and removing the workspace

`recover` undoes everything before `migrated` (trial dropped, snapshot restored or dropped, code put back)
and completes `migrated`. The next `treefork merge NAME`, `treefork merge --abort NAME` and
`treefork doctor --fix` call it; `gc` never drops a branch that carries an unfinished merge's tag.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from treefork import debug, output, platform
from treefork.backends.base import Backend, DbBranch
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import git
from treefork.state import State, Workspace
from treefork.workspace.lifecycle import Side, side

STARTED, TRIAL, SNAPSHOT, MIGRATING, RESTORING, MIGRATED = (
    "started",
    "trial",
    "snapshot",
    "migrating",
    "restoring",
    "migrated",
)
UNDONE, COMPLETED = "undone", "completed"


@dataclass
class MergeIntent:
    workspace: str
    parent: str  # the parent workspace ("root" for the main worktree)
    parent_path: str
    parent_branch: str
    head_before: str
    merged_head: str  # the workspace branch's commit being merged
    tag: str  # in the names of the trial fork and the snapshot
    keep: bool
    step: str = STARTED
    snapshot: dict[str, Any] | None = None  # the DbBranch, once made
    writes_at_snapshot: int | None = None  # Backend.writes_so_far just after the snapshot
    pid: int = field(default_factory=os.getpid)

    @property
    def trial_name(self) -> str:
        """The name the trial fork is made under (no workspace can have an '@')."""
        return f"{self.workspace}@merge-trial-{self.tag}"

    def snapshot_branch_or_none(self) -> DbBranch | None:
        return DbBranch(**self.snapshot) if self.snapshot else None

    def running_elsewhere(self) -> bool:
        return self.pid != os.getpid() and platform.process_alive(self.pid)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MergeIntent:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# ---- recording ------------------------------------------------------------------------------------


def pending_or_none(state: State, name: str) -> MergeIntent | None:
    data = state.merges.get(name)
    return MergeIntent.from_json(data) if data else None


def pending(state: State) -> list[MergeIntent]:
    return [MergeIntent.from_json(d) for _, d in sorted(state.merges.items())]


def protected_tags(state: State) -> set[str]:
    """The tags of unfinished merges: a database branch whose name carries one is that merge's (`gc`)."""
    return {str(d.get("tag")) for d in state.merges.values() if d.get("tag")}


def begin(
    ctx: Context, ws: Workspace, parent: Side, parent_branch: str, head_before: str, *, keep: bool
) -> MergeIntent:
    """Record the merge before anything changes; refuse while another merge into the same parent is unfinished."""
    assert ws.branch
    merged = git("rev-parse", "--verify", f"refs/heads/{ws.branch}^{{commit}}", cwd=parent.path).out.strip()
    intent = MergeIntent(
        ws.name, parent.name, str(parent.path), parent_branch, head_before, merged, os.urandom(5).hex(), keep
    )
    with ctx.registry.transaction() as st:
        for other in pending(st):
            if other.parent == parent.name or other.workspace == ws.name:
                raise _unfinished(other)
        st.merges[ws.name] = asdict(intent)
    return intent


def advance(ctx: Context, intent: MergeIntent, step: str) -> None:
    intent.step = step
    save(ctx, intent)


def save(ctx: Context, intent: MergeIntent) -> None:
    with ctx.registry.transaction() as st:
        st.merges[intent.workspace] = asdict(intent)


def clear(ctx: Context, intent: MergeIntent) -> None:
    with ctx.registry.transaction() as st:
        st.merges.pop(intent.workspace, None)


def _unfinished(other: MergeIntent) -> FatalError:
    if other.running_elsewhere():
        return FatalError(
            f"a merge of {other.workspace!r} into {other.parent} is in progress (process {other.pid})",
            hint="wait for it to finish",
        )
    return FatalError(
        f"a merge of {other.workspace!r} into {other.parent} was interrupted and is not finished",
        hint=f"`treefork merge {other.workspace}` finishes it, `treefork merge --abort {other.workspace}` undoes it",
    )


# ---- finishing or undoing ----------------------------------------------------------------------------


def recover(ctx: Context, intent: MergeIntent, *, abort: bool) -> str:
    """Finish an interrupted merge: complete it if the parent was migrated (unless abort and its snapshot
    can still put it back), else undo it. Returns COMPLETED or UNDONE."""
    if intent.running_elsewhere():
        raise _unfinished(intent)
    intent.pid = os.getpid()
    backend = ctx.backend()
    parent = side(ctx, ctx.state(), intent.parent)
    if intent.step == MIGRATED and not (abort and _snapshot_or_none(backend, parent, intent)):
        output.info(f"completing the interrupted merge of {intent.workspace} into {intent.parent}")
        complete(ctx, intent)
        return COMPLETED
    output.info(f"undoing the interrupted merge of {intent.workspace} into {intent.parent}")
    undo(ctx, intent)
    return UNDONE


def undo(ctx: Context, intent: MergeIntent) -> None:
    """The parent's code and data as before the merge; the trial fork and the snapshot gone; the intent too."""
    backend = ctx.backend()
    parent = side(ctx, ctx.state(), intent.parent)
    _drop_trial(backend, intent)
    snap = _snapshot_or_none(backend, parent, intent)
    if intent.step in (MIGRATING, RESTORING, MIGRATED):
        if snap is None and intent.step != RESTORING:
            raise FatalError(
                f"the snapshot of {parent.name}'s database taken before the migration is gone: it cannot be put back",
                hint=f"check {parent.name}'s database by hand; then `git -C {intent.parent_path} reset --hard "
                f"{intent.head_before[:12]}` to undo the code, or keep it",
            )
        if snap is not None:
            advance(ctx, intent, RESTORING)
            warn_restore(backend, parent, intent)
            debug.crash_point("merge:before-restore")
            backend.restore(parent.db, snapshot=snap)
    elif snap is not None:
        backend.drop_snapshot(snap)
    debug.crash_point("merge:after-restore")
    code_back(ctx, intent)
    clear(ctx, intent)


def complete(ctx: Context, intent: MergeIntent, *, state: State | None = None) -> list[str]:
    """After the parent was migrated: drop the snapshot, remove the workspace (unless kept), forget the intent.
    state: the registry as the merge read it, if it did (the removal re-checks what matters under its lock)."""
    from treefork.workspace import remove

    warnings = []
    backend = ctx.backend()
    snap = intent.snapshot_branch_or_none()
    if snap is not None:
        try:
            backend.drop_snapshot(snap)
        except FatalError as e:
            warnings.append(str(e))
            output.warn(str(e))
    debug.crash_point("merge:after-drop-snapshot")
    state = ctx.state() if state is None else state
    if not intent.keep and intent.workspace in state.workspaces:
        remove.remove(remove.outside(ctx, [intent.workspace], state)[0], intent.workspace, state=state)
    clear(ctx, intent)
    return warnings


def warn_restore(backend: Backend, parent: Side, intent: MergeIntent) -> None:
    """Say, before a restore, what it costs: the parent's clients are disconnected, and every write since the
    snapshot is lost (counted as write transactions begun on the parent's server, the migration's own too)."""
    try:
        now = backend.writes_so_far(parent.db)
    except FatalError:
        now = None
    count = (
        f"the {now - intent.writes_at_snapshot} write transaction(s) begun on it"
        if now is not None and intent.writes_at_snapshot is not None
        else "every write made to it"
    )
    output.warn(
        f"restoring {parent.name}'s database from the snapshot taken before the migration: its clients are "
        f"disconnected, and {count} since the snapshot (the failed migration's own included) are lost"
    )


def _drop_trial(backend: Backend, intent: MergeIntent) -> None:
    trial = backend.find_branch_or_none(intent.trial_name)
    if trial is not None:
        backend.delete_branch(trial)
    for left in backend.leftovers():  # one half made when the merge was killed (gc keeps it for the merge)
        if left.workspace == intent.trial_name:
            backend.drop_leftover(left)


def _snapshot_or_none(backend: Backend, parent: Side, intent: MergeIntent) -> DbBranch | None:
    if intent.step in (STARTED, TRIAL):
        return None
    return backend.find_snapshot_or_none(parent.db, tag=intent.tag)


def code_back(ctx: Context, intent: MergeIntent) -> None:
    """The parent's worktree back on the head it had, if what it has now is this merge's doing."""
    path = Path(intent.parent_path)
    if git("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=path, check=False).rc == 0:
        git("merge", "--abort", cwd=path)
    head = ctx.repo.head_of(path)
    if head == intent.head_before:
        return
    if head is None or not _made_by(path, head, intent):
        raise FatalError(
            f"{path} moved on since the interrupted merge of {intent.workspace} (HEAD {head and head[:12]}); its code was left as it is",
            hint=f"undo the merge there yourself if you want it undone (git -C {path} log), then `treefork merge --abort {intent.workspace}`",
        )
    mode = "--keep" if ctx.repo.is_dirty(path) else "--hard"  # --keep: changes made since are kept, or it refuses
    r = git("reset", mode, "-q", intent.head_before, cwd=path, check=False)
    if r.rc != 0:
        raise FatalError(
            f"cannot put {path} back to {intent.head_before[:12]}: {r.err.strip() or r.out.strip()}",
            hint=f"commit or stash the changes there (git -C {path} stash), then `treefork merge --abort {intent.workspace}`",
        )


def _made_by(path: Path, head: str, intent: MergeIntent) -> bool:
    """head is this merge's: a fast-forward to the merged commit, or a merge commit of the two."""
    if head == intent.merged_head:
        return True
    parents = git("rev-list", "--parents", "-n", "1", head, cwd=path).out.split()[1:]
    return parents == [intent.head_before, intent.merged_head]
