"""`treefork doctor [--fix] [--json]`: is automatic provisioning set up, and do the registry and git agree?

Exit 4 (exitcodes.FOUND) when a check fails (a warning alone does not fail). Each finding carries the command that fixes it.
Doctor only looks: it starts no stopped database and changes nothing, unless `--fix` asks it to carry out the
fixes that are treefork's own (start stopped databases, `gc`, `sync`, re-install its stale hooks); then it
checks again and reports what is left.
"""

from __future__ import annotations

from treefork import exitcodes, output, shapes
from treefork import git as gitmod
from treefork.backends.base import FAIL, OK
from treefork.commands.doctor import data, setup
from treefork.commands.doctor.checks import Check
from treefork.context import Context
from treefork.errors import FatalError


def run(*, fix: bool, as_json: bool) -> int:
    gitmod.check_version()
    ctx = Context.open()
    checks = _checks(ctx)
    fixed: list[str] = []
    if fix:
        fixed = _fix(checks)
        if fixed:
            ctx = Context.open()
            checks = _checks(ctx)
    failed = any(c.level == FAIL for c in checks)
    if as_json:
        report = {"ok": not failed, "fixed": fixed, "checks": [c.to_json() for c in checks]}
        output.emit_json(shapes.record("doctor", report))
    else:
        for name in fixed:
            output.info(f"[ fix] {name}")
        for c in checks:
            output.info(f"[{c.level:>4}] {c.name}: {c.message}" + (f" (fix: {c.hint})" if c.hint else ""))
    return exitcodes.FOUND if failed else exitcodes.OK


def _checks(ctx: Context) -> list[Check]:
    checks = [*setup.hook_checks(ctx), setup.neon_git_check(ctx), *setup.agent_checks(ctx)]
    return checks + [setup.worktreeinclude_check(ctx), *data.state_checks(ctx), *setup.worktree_checks(ctx)]


def _fix(checks: list[Check]) -> list[str]:
    """Carry out every fix a finding carries; one that fails is reported and the others go on."""
    fixed = []
    for c in checks:
        if c.level == OK or c.fix is None:
            continue
        try:
            c.fix()
            fixed.append(f"{c.name}: {c.hint}")
        except FatalError as e:
            output.warn(f"could not fix {c.name}: {e}")
    return fixed
