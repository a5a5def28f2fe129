"""`treefork claude-hook create|remove`: Claude Code's WorktreeCreate / WorktreeRemove hooks.

create prints only the new worktree's absolute path on stdout (Claude Code reads the last line);
failures exit 1 with the reason on stderr, which Claude Code shows.
"""

from __future__ import annotations

from treefork import output
from treefork.hooks import claude


def run(verb: str) -> int:
    payload = claude.read_payload()
    if verb == "create":
        output.result(str(claude.create(payload)))
    else:
        output.info(f"treefork: {claude.remove(payload)}")
    return 0
