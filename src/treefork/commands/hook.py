"""`treefork hook ...` (hidden): the entry the installed git hook scripts call. Always exits 0."""

from __future__ import annotations

from treefork import output
from treefork.hooks import handlers


def run(hook: str, args: tuple[str, ...]) -> int:
    if hook == "post-checkout":
        if len(args) != 3:
            output.warn(f"treefork hook post-checkout expects 3 arguments, got {len(args)}; ignored")
            return 0
        return handlers.post_checkout(*args)
    if hook == "reference-transaction":
        if len(args) != 1:
            output.warn(f"treefork hook reference-transaction expects 1 argument, got {len(args)}; ignored")
            return 0
        return handlers.reference_transaction(args[0], handlers.read_stdin_lines())
    if hook == "follow-rename" and len(args) == 2:
        return handlers.follow_rename(*args)
    output.warn(f"unknown hook {hook!r}; ignored")
    return 0
