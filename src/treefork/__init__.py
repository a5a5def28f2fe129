"""treefork: a git worktree plus its own database branch, in one command."""

__version__ = "0.1.0"
