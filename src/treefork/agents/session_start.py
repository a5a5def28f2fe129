"""Agents with no worktree events: their session-start hook runs `treefork sync --quiet` (docs/agents.md)."""

from __future__ import annotations

from typing import Any


def agents(make: Any) -> list[Any]:
    return []
