"""treefork's CLI as a test drives it: JSON answers parsed, errors checked for their one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Run, run_tf


def new(repo: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Path:
    """`treefork new --json`, returning the worktree path."""
    data = json.loads(run_tf(repo, "new", name, "--json", *args, env=env).out)
    path = Path(data["path"])
    assert path.is_dir() and (path / ".git").exists()
    return path


def _ls_rows(cwd: Path) -> list[dict[str, Any]]:
    rows = json.loads(run_tf(cwd, "ls", "--json").out)
    assert isinstance(rows, list)
    return rows


def ls(cwd: Path) -> dict[str, dict[str, Any]]:
    """`treefork ls --json` by name, the root included."""
    return {r["name"]: r for r in _ls_rows(cwd)}


def ls_json(repo: Path) -> list[dict[str, Any]]:
    """`treefork ls --json` without the root row (which must come first)."""
    rows = _ls_rows(repo)
    assert rows[0]["is_root"] and rows[0]["name"] == "root"
    return rows[1:]


def gc_dry(repo: Path) -> list[dict[str, Any]]:
    data = json.loads(run_tf(repo, "gc", "--dry-run", "--json").out)
    assert data["dry_run"] is True
    actions: list[dict[str, Any]] = data["actions"]
    return actions


def popen_tf(cwd: Path, *args: str, env: dict[str, str] | None = None, session: bool = False) -> subprocess.Popen[str]:
    """`python -m treefork ARGS` in the background. session: in a process group of its own (as a terminal's
    foreground job), so that a signal the test sends reaches treefork alone."""
    return subprocess.Popen(
        [sys.executable, "-m", "treefork", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=session,
    )


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def assert_one_line_error(stderr: str, *needles: str) -> None:
    """Exactly one error line, the last line on stderr (progress lines may come before it), no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("treefork: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected a one-line error, got:\n{stderr}"
    assert "Traceback" not in stderr
    for n in needles:
        assert n in errors[0], f"{n!r} not in {errors[0]!r}"


def assert_clear_error(r: Run, *, contains: str | None = None) -> str:
    """A failure (not a bug's exit 3) that ends in an error line, without a traceback; returns that line."""
    assert r.rc != 0, f"expected failure, got rc 0\nstdout: {r.out}\nstderr: {r.err}"
    assert r.rc in (1, 2), f"rc {r.rc} (3 = a bug):\n{r.err}"
    line = last_line(r.err)
    assert line.startswith("treefork: error:") or line.startswith("Error:"), f"not a clear error: {r.err!r}"
    assert "Traceback" not in r.err, r.err
    if contains:
        assert contains.lower() in r.err.lower(), f"{contains!r} not in {r.err!r}"
    return line
