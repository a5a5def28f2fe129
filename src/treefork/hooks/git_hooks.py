"""Install and uninstall treefork's git hooks, the careful way (as pre-commit does).

- Hooks go where git looks for them: `<common-dir>/hooks`, or an absolute `core.hooksPath`.
  A relative `core.hooksPath` is refused: git resolves it from wherever the hook runs, so linked
  worktrees would not find it (CONTRACTS D). The hint says how to make it absolute.
- Our scripts carry MARKER, so a re-install is a no-op (or an upgrade) and we never clobber a foreign hook:
  a foreign hook is moved to `<hook>.legacy` and our script still runs it; uninstall moves it back.
- The script records the interpreter that installed it (like pre-commit's INSTALL_PYTHON), so it works
  when PATH differs (GUIs, agents).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from treefork import selfcmd
from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text
from treefork.git import ZERO_SHA, Repo, git

MARKER = "# treefork-hook v1"
HOOKS = ("post-checkout", "reference-transaction")
LEGACY_SUFFIX = ".legacy"

_PYTHON_CALL = """\
if [ -x "$INSTALL_PYTHON" ]; then
  {call} hook {args} || true
elif command -v treefork >/dev/null 2>&1; then
  treefork hook {args} || true
else
  echo "treefork: error: $INSTALL_PYTHON is gone and treefork is not on PATH; run \\`treefork install\\` again" >&2
fi"""

POST_CHECKOUT = """\
#!/bin/sh
{marker} (post-checkout): written by `treefork install`; `treefork uninstall` removes it.
# Our part never fails the checkout; a legacy hook's exit status is kept, as before the install.
INSTALL_PYTHON={python}
if [ "$3" = 1 ] && [ "$1" = {zero} ] && [ -z "$TREEFORK_IN_PROGRESS" ]; then
  trap '' INT  # Python starts with ^C ignored, until treefork's own quiet handler is set
{call}
  trap - INT
fi
if [ -x "$0{legacy}" ]; then
  exec "$0{legacy}" "$@"
fi
exit 0
"""

REFERENCE_TRANSACTION = """\
#!/bin/sh
{marker} (reference-transaction): written by `treefork install`; `treefork uninstall` removes it.
# Cheap on purpose: Python starts only when a committed transaction deletes a local branch.
INSTALL_PYTHON={python}
if [ -x "$0{legacy}" ]; then
  input=$(cat)
  if [ -n "$input" ]; then printf '%s\\n' "$input"; fi | "$0{legacy}" "$@" || exit $?
  [ "$1" = committed ] && [ -z "$TREEFORK_IN_PROGRESS" ] || exit 0
  exec <<TREEFORK_EOF
$input
TREEFORK_EOF
fi
[ "$1" = committed ] && [ -z "$TREEFORK_IN_PROGRESS" ] || exit 0
deleted=
while read -r old new ref; do
  case "$new $ref" in
    "{zero} refs/heads/"*) deleted="$deleted$old $new $ref
" ;;
  esac
done
[ -n "$deleted" ] || exit 0
trap '' INT  # Python starts with ^C ignored, until treefork's own quiet handler is set
printf '%s' "$deleted" | {call_inline}
exit 0
"""


@dataclass(frozen=True)
class HookStatus:
    hook: str
    path: str
    installed: bool  # our script is there
    current: bool  # ... and it is what this treefork would write now
    legacy: bool  # a foreign hook is chained as <hook>.legacy
    foreign: bool  # a foreign hook is there instead of ours

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def hooks_dir(repo: Repo) -> Path:
    """Where git looks for hooks, shared by every worktree."""
    r = git("config", "--get", "core.hooksPath", cwd=repo.toplevel, check=False)
    configured = r.out.strip()
    if not configured:
        return repo.common_dir / "hooks"
    path = Path(configured).expanduser()
    if not path.is_absolute():
        absolute = (repo.main_root / path).resolve()
        raise FatalError(
            f"core.hooksPath is relative ({configured}); linked worktrees would not find treefork's hooks",
            hint=f"make it absolute: git config core.hooksPath {shlex.quote(str(absolute))}",
        )
    return path


def bypassed(repo: Repo) -> str | None:
    """Why treefork's installed hooks no longer run: `core.hooksPath` was pointed elsewhere after install (Qwen
    Code sets it to `.husky/` when that folder exists, CONTRACTS C2); None when they run (or were never installed)."""
    configured = git("config", "--get", "core.hooksPath", cwd=repo.toplevel, check=False).out.strip()
    default = repo.common_dir / "hooks"
    if not configured or not is_ours(default / HOOKS[0]):
        return None
    where = Path(configured).expanduser()
    where = where if where.is_absolute() else repo.main_root / where
    if where.resolve() == default.resolve() or is_ours(where / HOOKS[0]):
        return None
    return (
        f"core.hooksPath was set to {configured} after `treefork install` (Qwen Code does this when .husky/ "
        f"exists): git no longer runs treefork's hooks in {default}, so `git worktree add` is not provisioned"
    )


BYPASS_HINT = (
    "git config --unset core.hooksPath (or chain treefork's hooks from that directory), then `treefork doctor`"
)


def script_text(hook: str, python: str | None = None) -> str:
    python_q = shlex.quote(python or sys.executable)
    if hook == "post-checkout":
        call = _PYTHON_CALL.format(call=selfcmd.shell_call("INSTALL_PYTHON"), args='post-checkout "$@"')
        return POST_CHECKOUT.format(
            marker=MARKER, python=python_q, zero=ZERO_SHA, legacy=LEGACY_SUFFIX, call=_indent(call)
        )
    call_inline = (
        "{\n"
        + _indent(
            _PYTHON_CALL.format(call=selfcmd.shell_call("INSTALL_PYTHON"), args="reference-transaction committed")
        )
        + "\n}"
    )
    return REFERENCE_TRANSACTION.format(
        marker=MARKER, python=python_q, zero=ZERO_SHA, legacy=LEGACY_SUFFIX, call_inline=call_inline
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def status(repo: Repo) -> list[HookStatus]:
    where = hooks_dir(repo)
    result = []
    for hook in HOOKS:
        path = where / hook
        ours = is_ours(path)
        current = ours and path.read_text(encoding="utf-8") == script_text(hook) and os.access(path, os.X_OK)
        result.append(HookStatus(hook, str(path), ours, current, _legacy(path).exists(), path.exists() and not ours))
    return result


def install(repo: Repo) -> list[dict[str, str]]:
    """Write our hooks; returns what happened to each (installed | upgraded | unchanged), plus legacy moves."""
    where = hooks_dir(repo)
    where.mkdir(parents=True, exist_ok=True)
    done = []
    for hook in HOOKS:
        path = where / hook
        action = "installed"
        if path.exists() and not is_ours(path):
            if _legacy(path).exists():
                raise FatalError(
                    f"both {path} and {_legacy(path)} exist and neither is treefork's",
                    hint=f"merge them into {_legacy(path)} and delete {path}, then run `treefork install` again",
                )
            os.replace(path, _legacy(path))
            done.append({"hook": hook, "path": str(_legacy(path)), "action": "kept as legacy (still runs)"})
        elif path.exists():
            action = "upgraded"
        changed = atomic_write_text(path, script_text(hook), mode=0o755)
        done.append({"hook": hook, "path": str(path), "action": action if changed else "unchanged"})
    return done


def uninstall(repo: Repo) -> list[dict[str, str]]:
    where = hooks_dir(repo)
    done = []
    for hook in HOOKS:
        path = where / hook
        if not is_ours(path):
            done.append(
                {
                    "hook": hook,
                    "path": str(path),
                    "action": "not ours; left alone" if path.exists() else "not installed",
                }
            )
            continue
        path.unlink()
        action = "removed"
        if _legacy(path).exists():
            os.replace(_legacy(path), path)
            action = "removed; legacy hook restored"
        done.append({"hook": hook, "path": str(path), "action": action})
    return done


def _legacy(path: Path) -> Path:
    return path.with_name(path.name + LEGACY_SUFFIX)
