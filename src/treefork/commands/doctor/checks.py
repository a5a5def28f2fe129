"""A doctor finding: its level, what it found, the command that fixes it, and what `--fix` runs for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from treefork import shapes

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    level: str
    message: str
    hint: str | None = None
    data: Any = None
    fix: Callable[[], object] | None = field(default=None, repr=False, compare=False)  # what --fix runs

    def to_json(self) -> dict[str, Any]:
        return shapes.record("doctor check", {k: v for k, v in asdict(self).items() if k != "fix"})
