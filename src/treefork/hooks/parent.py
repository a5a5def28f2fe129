"""Which workspace a worktree made by plain git forks its database from (the parent rule).

1. The workspace whose worktree ran the command (`git -C ../a worktree add ...` forks from a),
   read from the invoking git process's cwd where the OS shows it (/proc on Linux).
2. Else the workspace whose branch is the new branch's upstream (`git worktree add --track -b x ../x a`).
3. Else a workspace whose HEAD is the new worktree's start commit, unless the main worktree's HEAD is
   that commit too (a tie goes to the root).
4. Else the root.
Only ready workspaces can be parents.
"""

from __future__ import annotations

import os
from pathlib import Path

from treefork.context import Context
from treefork.git import git
from treefork.hooks import procinfo
from treefork.state import READY, State, Workspace


def invoking_worktree() -> Path | None:
    """The cwd of the git process that ran this hook (our parent, as the hook script execs us), if knowable."""
    for pid in procinfo.ancestors(3):
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if procinfo.comm(pid) == "git":
            return cwd
    return None


def choose(ctx: Context, state: State, *, branch: str | None, new_head: str, invoker: Path | None) -> str | None:
    ready = [ws for ws in state.workspaces.values() if ws.status == READY and ws.db_branch and ws.branch != branch]
    by_cwd = _by_invoker(ready, invoker)
    if by_cwd is not None:
        return by_cwd.name
    if invoker is not None and _within(invoker, ctx.repo.main_root):
        return None  # run from the main worktree: the root
    upstream = (
        branch
        and git("rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}", cwd=ctx.repo.toplevel, check=False).out.strip()
    )
    for ws in ready:
        if upstream and ws.branch == upstream:
            return ws.name
    if ctx.repo.head_of(ctx.repo.main_root) == new_head:
        return None
    for ws in sorted(ready, key=lambda w: w.name):
        if Path(ws.path).exists() and ctx.repo.head_of(Path(ws.path)) == new_head:
            return ws.name
    return None


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
