"""Waiting for Neon's asynchronous operations at the floor: about the operation's own time plus one poll.

Each round is one request (the project's recent operations, newest first; an operation not among them is
fetched by id). The first poll waits for the operation's expected time, learned from the last one of its kind
(`total_duration_ms`, kept in the registry's backend settings) less half the request's round trip; later
polls come at intervals that start at TREEFORK_NEON_POLL_SECONDS (0.05 s) and grow by half up to 2 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from treefork.backends.neon.api import NeonApi
from treefork.errors import BackendError

DONE, FAILED = {"finished", "skipped"}, {"failed", "error", "cancelled"}
GIVE_UP_SECONDS = 300


def wait(
    api: NeonApi,
    base: str,
    operations: list[dict[str, Any]],
    *,
    what: str,
    progress: Callable[[str], None],
    first_delay: float | None = None,
) -> float | None:
    """Poll until every operation is done; the longest `total_duration_ms` seen, in seconds."""
    pending = {op["id"] for op in operations if op.get("status") not in DONE}
    interval = float(os.environ.get("TREEFORK_NEON_POLL_SECONDS") or 0.05)
    delay = interval if first_delay is None else max(0.0, first_delay)
    give_up_at = time.monotonic() + GIVE_UP_SECONDS
    longest: float | None = None
    shown = False
    while pending:
        if time.monotonic() > give_up_at:
            raise BackendError(
                f"Neon operations for {what} did not finish within {GIVE_UP_SECONDS} s",
                hint="check the project's operations in the Neon console, then retry",
            )
        time.sleep(delay)
        delay, interval = interval, min(2.0, interval * 1.5)
        if not shown and interval > 0.5:
            progress(f"waiting for Neon to finish {what}")
            shown = True
        for op in _operations(api, base, pending):
            if op.get("status") in FAILED:
                raise BackendError(
                    f"Neon operation {op.get('action')} for {what} {op.get('status')}: {op.get('error') or 'no detail'}",
                    hint="see the operation in the Neon console; retry the command",
                )
            if op.get("status") in DONE:
                pending.discard(op["id"])
                if op.get("total_duration_ms") is not None:
                    longest = max(longest or 0.0, float(op["total_duration_ms"]) / 1000)
    return longest


def _operations(api: NeonApi, base: str, ids: set[str]) -> list[dict[str, Any]]:
    listed = api.get(f"{base}/operations", {"limit": 100}).get("operations", [])
    found = [op for op in listed if op.get("id") in ids]
    missing = ids - {op["id"] for op in found}
    return found + [api.get(f"{base}/operations/{i}")["operation"] for i in sorted(missing)]
