"""Waiting for Neon's asynchronous operations at the floor: about the operation's own time plus one poll.

Each round is one request: the project's recent operations (`limit=100`; Neon lists the newest first, the
spec names no order). An operation the listing does not show is fetched by id, several side by side, and
the rest of the wait polls by id. The first poll waits for the operation's expected time, learned from the
last one of its kind (`total_duration_ms`, kept in the registry's backend settings) less half the
request's round trip, or FIRST_POLL_SECONDS when nothing was learned yet; later polls come at intervals
that start at TREEFORK_NEON_POLL_SECONDS (0.05 s) and grow by half up to 2 s. A `beside` step (revealing
the new branch's password) runs alongside each round until it reports it is done, so it costs no round
trip of its own.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from treefork.backends.neon.api import NeonApi
from treefork.background import Background
from treefork.errors import BackendError

DONE, FAILED = {"finished", "skipped"}, {"failed", "error", "cancelled"}
GIVE_UP_SECONDS = 300
# Before a repository has seen one of its own operations: the spec's examples give 100 ms; a shorter
# first poll costs one request, a longer one waits past the end of the operation.
FIRST_POLL_SECONDS = 0.1


def wait(
    api: NeonApi,
    base: str,
    operations: list[dict[str, Any]],
    *,
    what: str,
    progress: Callable[[str], None],
    first_delay: float | None = None,
    beside: Callable[[], bool] | None = None,
) -> float | None:
    """Poll until every operation is done; the longest `total_duration_ms` seen, in seconds."""
    pending = {op["id"] for op in operations if op.get("status") not in DONE}
    interval = float(os.environ.get("TREEFORK_NEON_POLL_SECONDS") or 0.05)
    delay = min(interval * 2, FIRST_POLL_SECONDS) if first_delay is None else max(0.0, first_delay)
    give_up_at = time.monotonic() + GIVE_UP_SECONDS
    longest: float | None = None
    shown = False
    polls = _Polls(api, base)
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
        ops, beside_done = polls.round(pending, beside)
        if beside_done:
            beside = None
        for op in ops:
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


class _Polls:
    """One round of polling: the listing while it shows our operations, then each by id, side by side."""

    def __init__(self, api: NeonApi, base: str) -> None:
        self.api, self.base = api, base
        self.listing_shows_ours = True

    def round(self, ids: set[str], beside: Callable[[], bool] | None) -> tuple[list[dict[str, Any]], bool]:
        """The operations' states, and whether `beside`, run alongside, says it is done."""
        alongside = Background(beside, name="neon-beside") if beside is not None else None
        try:
            ops = self._operations(ids)
        finally:
            done = alongside.result() if alongside is not None else False
        return ops, done

    def _operations(self, ids: set[str]) -> list[dict[str, Any]]:
        if not self.listing_shows_ours:
            return self._by_id(sorted(ids))
        listed = self.api.get(f"{self.base}/operations", {"limit": 100}).get("operations", [])
        found = [op for op in listed if op.get("id") in ids]
        missing = sorted(ids - {op["id"] for op in found})
        self.listing_shows_ours = not missing
        return found + self._by_id(missing)

    def _by_id(self, ids: list[str]) -> list[dict[str, Any]]:
        jobs = [Background(functools.partial(self._one, i), name="neon-poll") for i in ids[1:]]
        first = [self._one(ids[0])] if ids else []
        return first + [job.result() for job in jobs]

    def _one(self, op_id: str) -> dict[str, Any]:
        op: dict[str, Any] = self.api.get(f"{self.base}/operations/{op_id}")["operation"]
        return op
