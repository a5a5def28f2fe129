"""A doctor finding: its level, what it found, the command that fixes it, and what `--fix` runs for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from treefork import shapes


@dataclass
class Check:
    name: str
    level: str
    message: str
    hint: str | None = None
    data: Any = None
    fix: Callable[[], object] | None = field(default=None, repr=False, compare=False)  # what --fix runs

    def to_json(self) -> dict[str, Any]:
        # not asdict(): it deep-copies `fix`, a bound method of the backend's (locks and all)
        return shapes.record("doctor check", {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fix"})
