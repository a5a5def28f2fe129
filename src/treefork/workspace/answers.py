"""What `ls` asks git that it need not ask twice, kept in the registry's directory (`<git common dir>/treefork/
answers.json`): how far two commits are apart and whether one contains the other (a commit never changes, so
neither does the answer), and the migration-file collisions, under the branch heads and workspaces they were
read from. An unchanged repository then costs `ls` one `git for-each-ref`, where it cost three git processes a
workspace and a few more for the collisions.

The file holds commit ids, counts and file names, no secret. Losing it, or two commands writing it at once (the
last one wins), costs only the git processes it saves.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

from treefork.fsutil import atomic_write_text
from treefork.git import git

VERSION = 1
KEEP = 2000  # commit pairs kept; beyond that, only those the last listing asked


class Answers:
    """One command's view of the file: read once, asked from the rows' threads, written once if it grew."""

    def __init__(self, directory: Path, main_root: Path) -> None:
        self.file = directory / "answers.json"
        self.main_root = main_root
        self._lock = threading.Lock()
        self._changed = False
        data = _load(self.file)
        self._pairs: dict[str, Any] = _dict(data.get("pairs"))
        self._collisions: dict[str, Any] = _dict(data.get("collisions"))
        self._asked: set[str] = set()

    def heads(self) -> dict[str, str]:
        """'refs/heads/x' -> its commit, for every branch: one process."""
        r = git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", cwd=self.main_root, check=False)
        return {ref: sha for sha, _, ref in (line.partition(" ") for line in r.out.splitlines())}

    def ahead_behind(self, base: str, tip: str) -> tuple[int, int] | None:
        """Commits tip has that base lacks, and the reverse (two commit ids)."""
        found = self._pair(f"ab {base} {tip}", lambda: _ahead_behind(self.main_root, base, tip), _two_counts)
        return (found[0], found[1]) if _two_counts(found) else None

    def is_ancestor(self, commit: str, *, of: str) -> bool:
        """commit is of, or one of its ancestors (two commit ids). A commit git no longer has is not."""
        found = self._pair(f"anc {commit} {of}", lambda: _is_ancestor(self.main_root, commit, of), _is_bool)
        return found is True

    def collisions(self, key: dict[str, Any], find: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The collisions found under key (everything they were read from), found again only when it changed."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        found = self._collisions.get("found")
        if self._collisions.get("key") == digest and _records(found):
            return list(found)
        found = find()
        with self._lock:
            self._collisions, self._changed = {"key": digest, "found": found}, True
        return found

    def save(self) -> None:
        """Write the file if this command learnt something."""
        with self._lock:
            if not self._changed:
                return
            pairs = dict(self._pairs)
        if len(pairs) > KEEP:  # branches come and go: keep what this listing asked
            pairs = {k: v for k, v in pairs.items() if k in self._asked}
        data = {"version": VERSION, "pairs": pairs, "collisions": self._collisions}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            atomic_write_text(self.file, json.dumps(data, sort_keys=True) + "\n", mode=0o644)
        except OSError:
            pass  # a read-only repository: the answers are asked of git again next time

    def _pair(self, key: str, ask: Callable[[], Any], valid: Callable[[Any], bool]) -> Any:
        """The answer kept for key, else git's (kept unless git could not answer: a missing commit)."""
        with self._lock:
            self._asked.add(key)
            if valid(self._pairs.get(key)):
                return self._pairs[key]
        found = ask()
        if valid(found):
            with self._lock:
                self._pairs[key], self._changed = found, True
        return found


def _load(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == VERSION else {}


def _two_counts(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(type(n) is int for n in value)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _records(value: object) -> TypeGuard[list[dict[str, Any]]]:
    """A list of collision records, as to_json made them (a file edited by hand is read again from git)."""
    return isinstance(value, list) and all(isinstance(c, dict) and isinstance(c.get("workspaces"), list) for c in value)


def _ahead_behind(main_root: Path, base: str, tip: str) -> list[int] | None:
    """One process a pair: git 2.39 has no for-each-ref %(ahead-behind), and rev-list counts one pair at a time."""
    r = git("rev-list", "--left-right", "--count", f"{base}...{tip}", cwd=main_root, check=False)
    parts = r.out.split()
    return [int(parts[1]), int(parts[0])] if r.rc == 0 and len(parts) == 2 else None


def _is_ancestor(main_root: Path, commit: str, of: str) -> bool | None:
    rc = git("merge-base", "--is-ancestor", commit, of, cwd=main_root, check=False).rc
    return {0: True, 1: False}.get(rc)
