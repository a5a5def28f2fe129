"""Claude Code worktree hooks (CONTRACTS C): WorktreeCreate / WorktreeRemove.

With a WorktreeCreate hook configured, Claude Code runs no git logic itself: we add the worktree at
`<main>/.claude/worktrees/<n>` on branch `worktree-<n>` (`<n>` = name with '/' -> '+') from Claude's own
base, provision it, do what Claude would have done (agents/claude_worktree.py) and print its absolute
path as the last stdout line. Everything else goes to stderr.

Remove runs with its cwd inside the worktree it removes: it finds the main worktree from `worktree_path`,
leaves for it, and removes only a workspace it made for Claude (origin claude) that is not locked and loses
nothing: no uncommitted change, no commit found on no other branch (agents/owner.py). Anything else keeps
its worktree, its branch and its database and exits 1, so Claude says "kept at ...".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from treefork import output, procinfo
from treefork.agents import claude_settings, claude_worktree, owner
from treefork.context import Context
from treefork.errors import FatalError
from treefork.git import IN_PROGRESS_ENV, Repo, Worktree
from treefork.names import WorkspaceName
from treefork.state import Workspace
from treefork.workspace import create as creating
from treefork.workspace import reconcile
from treefork.workspace import remove as removing

WORKTREES_DIR = ".claude/worktrees"


PAYLOAD_LIMIT = 1 << 20  # Claude's payloads are a few hundred bytes
PAYLOAD_SECONDS = 10.0


def read_payload(stream: int = 0, *, limit: int = PAYLOAD_LIMIT, seconds: float = PAYLOAD_SECONDS) -> dict[str, Any]:
    """One JSON object from stdin, without waiting for EOF (Claude Code may keep the pipe open); at most
    `limit` bytes, and a complete object within `seconds`."""
    import select

    decoder, data = json.JSONDecoder(), b""
    give_up_at = time.monotonic() + seconds
    while True:
        left = give_up_at - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            raise FatalError(
                f"no complete JSON object on stdin within {seconds:g} s",
                hint='Claude Code sends one at once; to test: echo \'{"name":"x"}\' | treefork claude-hook create',
            )
        chunk = os.read(stream, 65536)
        data += chunk
        if len(data) > limit:
            raise FatalError(
                f"the hook's stdin holds more than {limit} bytes", hint="Claude Code sends a small JSON object"
            )
        stripped = data.decode("utf-8", errors="replace").lstrip()
        if stripped:
            try:
                obj, _ = decoder.raw_decode(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return obj
        if not chunk:
            raise FatalError(
                "no JSON object on stdin",
                hint='Claude Code sends one; to test: echo \'{"name":"x"}\' | treefork claude-hook create',
            )


def _main_context(start: Path) -> Context:
    """The context of the main worktree, opened from there (never from inside a worktree about to go)."""
    if not start.is_dir():
        raise FatalError(f"{start} does not exist", hint="run the hook from the repository")
    repo = Repo.discover(start).from_main_root()
    os.chdir(repo.main_root)
    return Context.of(repo)


def create(payload: dict[str, Any]) -> Path:
    raw = payload.get("name") or payload.get("worktree_name")
    if not isinstance(raw, str) or not raw:
        raise FatalError("the WorktreeCreate payload has no name", hint='expected {"name": "..."} on stdin')
    name = WorkspaceName.of(raw)
    os.environ[IN_PROGRESS_ENV] = "1"  # our own `git worktree add` fires post-checkout: it must back off
    cwd = payload.get("cwd")
    ctx = _main_context(Path(cwd) if isinstance(cwd, str) else Path.cwd())
    ctx.state().expect_initialized()
    repo = ctx.repo
    path = (repo.main_root / WORKTREES_DIR / name.dir_name).absolute()
    branch = f"worktree-{name.dir_name}"
    repo.add_exclude(f"/{WORKTREES_DIR}/", why="Claude Code worktrees")
    _expect_name_is_claudes(ctx, name, path)
    settings = claude_settings.worktree_settings(repo.main_root)
    made_branch = None
    with ctx.registry.git_lock():
        listed = reconcile.listed_worktrees(ctx)
        if path.resolve() not in listed:
            head = repo.head_in(repo.main_root, listed)  # the main worktree's HEAD, in the listing already
            if head is None:
                raise FatalError("this repository has no commits yet", hint="make a first commit, then retry")
            output.info(f"treefork: creating worktree {path} (branch {branch})")
            made_branch = claude_worktree.add(repo, path, branch, settings, head=head)
    ws = creating.create(
        ctx,
        creating.NewRequest(name=name, branch=branch, path=path, parent=None, origin="claude", adopt_worktree=True),
    )
    if made_branch is not None:  # treefork ran `git worktree add`: the worktree, and maybe the branch, are its own
        with ctx.registry.transaction() as st:
            st.workspaces[ws.name].created_worktree = True
            st.workspaces[ws.name].created_branch = st.workspaces[ws.name].created_branch or made_branch
    pid = procinfo.agent_pid()
    claude_worktree.finish(repo, path, settings, env_file=ctx.config.env_file, pid=pid)
    owner.record(path, agent="claude", pid=pid, attended=_attended(payload))
    output.info(f"treefork: workspace {ws.name} ready: database {ws.db_branch} ({ws.clone_method})")
    return path


def _expect_name_is_claudes(ctx: Context, name: WorkspaceName, path: Path) -> None:
    """The same name again resumes Claude's own worktree; a name another workspace holds is refused before
    anything is made (never a worktree with no env file of its own, never the other workspace called ready)."""
    ws = ctx.state().workspaces.get(name)
    if ws is None or (ws.origin == "claude" and Path(ws.path).resolve() == path.resolve()):
        return
    raise FatalError(
        f"workspace {name!r} already exists (made by {_made_by(ws.origin)}, at {ws.path}); "
        "a Claude Code worktree needs a name of its own",
        hint=f"start Claude with another name (claude -w {name}-2), or `treefork rm {name}` first",
    )


def _made_by(origin: str) -> str:
    return {"new": "`treefork new`", "claude": "Claude Code"}.get(origin, f"a git hook ({origin})")


def _attended(payload: dict[str, Any]) -> bool:
    """A person's session, not `-p` ("0") nor a subagent: Claude 2.1.332 asks them Keep/Remove at exit, and what
    they keep, gc must keep. Older versions (no variable) removed a clean worktree at exit without asking."""
    return os.environ.get("CLAUDE_CODE_SESSION_ATTENDED") == "1" and not payload.get("agent_id")


def remove(payload: dict[str, Any]) -> str:
    raw = payload.get("worktree_path")
    if not isinstance(raw, str) or not raw:
        raise FatalError(
            "the WorktreeRemove payload has no worktree_path", hint='expected {"worktree_path": "/abs"} on stdin'
        )
    os.environ[IN_PROGRESS_ENV] = "1"
    path = Path(raw).absolute()
    ctx = _main_context(_main_root_of(path))
    if path.resolve() == ctx.repo.main_root.resolve():
        raise FatalError(f"{path} is the main worktree", hint="WorktreeRemove is for worktrees Claude made")
    state = ctx.state()
    ws = state.workspace_by_path_or_none(path) if state.initialized else None
    tree = reconcile.listed_worktrees(ctx).get(path.resolve())
    if ws is None:
        if tree is None:
            return f"{path} is already gone"
        raise FatalError(
            f"kept {path}: it is not a worktree treefork made for Claude Code (no workspace records it)",
            hint=f"remove it yourself if you mean to: git worktree remove {path}",
        )
    why = _keep_reason(ctx, ws, tree, path)
    if why:
        raise FatalError(
            f"kept {path}: {why}; its worktree, branch and database stay",
            hint=f"commit and merge or push it, then `treefork rm {ws.name}`"
            if ws.origin == "claude"
            else f"`treefork rm {ws.name}` removes it when you mean to",
        )
    removing.remove(ctx, ws.name, force=False, delete_branch=True)
    return f"removed workspace {ws.name}: worktree, branch {ws.branch} and its database"


def _keep_reason(ctx: Context, ws: Workspace, tree: Worktree | None, path: Path) -> str | None:
    """Why WorktreeRemove must keep this worktree. It removes only what Claude asked treefork to make (origin
    claude), never a locked worktree, never uncommitted work, never commits found on no other branch."""
    if ws.origin != "claude":
        return f"it is workspace {ws.name!r}, made by {_made_by(ws.origin)}, not a Claude Code worktree"
    if tree is not None and tree.locked:
        return "it is locked (git worktree lock)"
    return owner.keep_reason(ctx.repo, path, ws.branch, check_owner=False, check_dirty=True)


def _main_root_of(worktree: Path) -> Path:
    """The main worktree of a linked worktree, read from its `.git` file; else `<main>/.claude/worktrees/<n>`."""
    gitdir = owner.gitdir_of(worktree)
    common = gitdir / "commondir" if gitdir is not None else None
    if common is not None and common.is_file():
        common_dir = (common.parent / common.read_text(encoding="utf-8").strip()).resolve()
        if common_dir.name == ".git":
            return common_dir.parent
    for p in worktree.parents:
        if p.name == "worktrees" and p.parent.name == ".claude":
            return p.parent.parent
    raise FatalError(
        f"cannot tell which repository {worktree} belongs to", hint=f"remove it with git worktree remove {worktree}"
    )
