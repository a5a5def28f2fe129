"""Which workspace a new worktree's database forks from: the one its code starts from (the parent rule).
Every entry point follows it: post-checkout, `treefork sync` (and so every agent's session hook), and
`treefork new` without --from (which takes the workspace it runs in, code and data alike).

1. The workspace whose branch is the new branch's upstream (`git worktree add --track -b x ../x feat-A`).
2. Else a workspace whose worktree HEAD is the new worktree's start commit. When several are, the one
   the command ran in wins (read from the invoking git process's cwd where the platform shows it:
   platform.process_cwd_or_none); else the root when the main worktree's HEAD is that commit too; else the
   first by name.
3. Else the root.
Only ready workspaces can be parents. `treefork new` takes --from, else the workspace it runs in (for_new).
"""

from __future__ import annotations

from pathlib import Path

from treefork import platform, procinfo
from treefork.context import Context
from treefork.git import git
from treefork.state import READY, State, Workspace


def for_new(ctx: Context, state: State, given: str | None, name: str) -> str | None:
    """--from, else the workspace this runs in (code and data start from the same place: docs/hooks.md); a
    re-run of an existing workspace keeps the parent it was made with, wherever it runs."""
    if given is not None:
        return None if given == "root" else given
    if name in state.workspaces:
        return state.workspaces[name].parent
    here = state.workspace_by_path_or_none(ctx.repo.toplevel)
    return here.name if here is not None and here.status == READY and here.db_branch else None


def invoking_worktree() -> Path | None:
    """The cwd of the git process that ran this hook (our parent, as the hook script execs us), if knowable."""
    for pid in procinfo.ancestors(3):
        cwd = platform.process_cwd_or_none(pid)
        if cwd is not None and platform.process_name(pid) == "git":
            return Path(cwd)
    return None


def choose(ctx: Context, state: State, *, branch: str | None, new_head: str, invoker: Path | None) -> str | None:
    """Git is asked only what a candidate needs: the upstream when a workspace could be it, and every HEAD
    from one `git worktree list` (one process, not one a workspace plus one for the root)."""
    ready = [ws for ws in state.workspaces.values() if ws.status == READY and ws.db_branch and ws.branch != branch]
    if branch and ready:
        upstream = git(
            "rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}", cwd=ctx.repo.toplevel, check=False
        ).out.strip()
        for ws in ready:
            if upstream and ws.branch == upstream:
                return ws.name
    candidates = [ws for ws in ready if Path(ws.path).exists()]
    if not candidates:
        return None
    from treefork.workspace import reconcile

    listed = reconcile.listed_worktrees(ctx)
    same = [ws for ws in candidates if ctx.repo.head_in(Path(ws.path), listed) == new_head]
    by_cwd = _by_invoker(same, invoker)
    if by_cwd is not None:
        return by_cwd.name
    if not same or ctx.repo.head_in(ctx.repo.main_root, listed) == new_head:
        return None
    return sorted(same, key=lambda w: w.name)[0].name


def _by_invoker(ready: list[Workspace], invoker: Path | None) -> Workspace | None:
    if invoker is None:
        return None
    for ws in ready:
        if _within(invoker, Path(ws.path)):
            return ws
    return None


def _within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
