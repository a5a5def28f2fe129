"""Neon CLI 6's own git integration, which fights treefork's: `neon git install` writes a post-checkout hook
marked `# neon:git-sync` that runs `neon git sync` (a `neon checkout` plus `env pull` into `.env`) on every
checkout, rewriting the main worktree's `.env` to point at whatever branch was checked out last.

`doctor` flags it and `install` explains the conflict, through `neon_git_sync_hook_present`.
"""

from __future__ import annotations

from pathlib import Path

from treefork.git import git

MARKER = "# neon:git-sync"
EXPLANATION = (
    "Neon CLI's `neon git install` hook (# neon:git-sync) rewrites .env on every checkout, so the main "
    "worktree's DATABASE_URL follows whichever branch was checked out last, and it fights treefork's per-worktree "
    "env files; remove it (neon git uninstall, or delete the hook) and let treefork provision worktrees"
)


def neon_git_sync_hook_present(repo: Path) -> bool:
    """Whether the repository's post-checkout hook (or the one treefork chained as .legacy) is Neon's."""
    r = git("rev-parse", "--git-path", "hooks", cwd=repo, check=False)
    if r.rc != 0:
        return False
    hooks = Path(r.out.strip())
    hooks = hooks if hooks.is_absolute() else repo / hooks
    for name in ("post-checkout", "post-checkout.legacy"):
        try:
            if MARKER in (hooks / name).read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False
