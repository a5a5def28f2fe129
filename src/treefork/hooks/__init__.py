"""Automatic provisioning: git hooks (post-checkout, reference-transaction) and Claude Code worktree hooks."""
