"""Agent integrations: each coding agent's own hook system, wired to treefork (docs/agents.md)."""
