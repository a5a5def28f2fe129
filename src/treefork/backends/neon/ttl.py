"""Durations like 7d, 12h, 30m (Neon branch expiry: at most 30 days)."""

from __future__ import annotations

import re

from treefork.errors import FatalError

MAX_SECONDS = 30 * 24 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str | None) -> int | None:
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not m:
        raise FatalError(f"bad --ttl {text!r}", hint="use a number and a unit, e.g. 12h or 7d")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0 or seconds > MAX_SECONDS:
        raise FatalError(f"--ttl {text} is out of range", hint="Neon allows at most 30 days, e.g. --ttl 7d")
    return seconds
