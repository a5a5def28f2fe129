"""Adopting a worktree that something other than treefork made (git, an agent): one request builder for
post-checkout, `treefork sync` and every agent's session hook.

Names: a worktree on a branch is named after the branch. A detached one (Codex) is named after its
directory; when that name is the repository's own (Codex puts every worktree at `<4 hex>/<repo>`) or is
already taken, after `<parent directory>/<directory>`.

When provisioning cannot even start, the worktree still gets an env file whose DATABASE_URL fails loudly
(never the main worktree's), and, when it has a usable name, a registry entry marked unprovisioned.
"""

from __future__ import annotations

from pathlib import Path

from treefork.context import Context
from treefork.errors import FatalError
from treefork.names import WorkspaceName
from treefork.state import UNPROVISIONED, Workspace
from treefork.workspace import create, envbuild
from treefork.workspace import parent as parent_rule
from treefork.workspace.remove import RESERVED


def name_for(ctx: Context, root: Path, branch: str | None) -> WorkspaceName:
    if branch is not None:
        try:
            name = WorkspaceName.of(branch)
        except FatalError as e:
            raise FatalError(
                f"branch {branch!r} cannot name a workspace ({e.message})",
                hint=f"rename it (git branch -m NEWNAME), then run `treefork sync` in {root}",
            ) from None
        if name in RESERVED:  # never a second "root" beside the root workspace
            raise FatalError(
                f"branch {branch!r} cannot name a workspace: {name!r} is the root workspace's name",
                hint=f"rename it (git -C {root} branch -m {branch} {branch}-work), then run `treefork sync` in {root}",
            )
        return name
    taken = set(ctx.state().workspaces)
    candidate = root.name
    if candidate == ctx.repo.name or candidate in taken:
        candidate = f"{root.parent.name}/{root.name}"
    try:
        return WorkspaceName.of(candidate)
    except FatalError as e:
        raise FatalError(
            f"the detached worktree {root} cannot be named from its directory ({e.message})",
            hint=f"give it a branch (git switch -c NAME in {root}), then run `treefork sync` there",
        ) from None


def request_for(
    ctx: Context,
    root: Path,
    *,
    branch: str | None,
    origin: str,
    new_head: str | None = None,
    invoker: Path | None = None,
) -> create.NewRequest:
    """The request for a worktree git already made (on `branch`, None when detached: the caller has asked
    git already), writing the fail-loud env file if none can be built."""
    try:
        name = name_for(ctx, root, branch)
        head = new_head or ctx.repo.head_of(root) or ""
        parent = parent_rule.choose(ctx, ctx.state(), branch=branch, new_head=head, invoker=invoker)
    except FatalError as e:
        fail_loud(ctx, root, None, e)
        raise
    return create.NewRequest(name=name, branch=branch, path=root, parent=parent, origin=origin, adopt_worktree=True)


def resume_request(ws: Workspace) -> create.NewRequest:
    return create.NewRequest(
        name=WorkspaceName(ws.name),
        branch=ws.branch,
        path=Path(ws.path),
        parent=ws.parent,
        origin=ws.origin,
        adopt_worktree=True,
    )


def fail_loud(ctx: Context, root: Path, name: WorkspaceName | None, error: Exception | None = None) -> None:
    """An env file that fails loudly, and (with a name and an error) the worktree recorded as unprovisioned."""
    envbuild.write_worktree_env(ctx.repo, ctx.config, root, None)
    if name is None or error is None or name in RESERVED:
        return
    with ctx.registry.transaction() as st:
        if name not in st.workspaces and st.workspace_by_path_or_none(root) is None:
            st.workspaces[name] = Workspace(
                name=str(name),
                branch=ctx.repo.current_branch(root),
                path=str(root),
                parent=None,
                status=UNPROVISIONED,
                origin="adopted",
                error=str(error),
            )


def provision(ctx: Context, req: create.NewRequest) -> Workspace:
    """Adopt and provision the worktree of `req` (from request_for); on any failure the worktree is left
    fail-loud and recorded where possible."""
    root = req.path
    assert root is not None  # request_for names the worktree
    try:
        ctx.backend().prepare()
        ws = create.create(ctx, req)
    except FatalError as e:
        fail_loud(ctx, root, req.name, e)
        raise
    from treefork.agents import claude_worktree

    claude_worktree.share_settings(ctx.repo, root)
    return ws
