"""Typed domain names and the rules that make them safe.

WorkspaceName: what the user types (`feature/auth`); also the git branch name by default.
DbName: a PostgreSQL identifier derived from it: valid, at most 63 bytes, unique per repo.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from treefork.errors import FatalError

MAX_NAME_CHARS = 200
MAX_NAME_BYTES = 240
PG_MAX_IDENT_BYTES = 63

# Characters git allows in a branch name but that only ever mean trouble in a workspace name:
# shell metacharacters, quotes, and the ones git itself forbids.
_FORBIDDEN = set(" \t\n\r$`;|&<>'\"\\()!{}#%*?[]~^:,=")
_HINT = "use letters, digits, '.', '_', '-' and '/', e.g. feature/auth"


class WorkspaceName(str):
    """A validated workspace name."""

    @classmethod
    def of(cls, raw: str) -> WorkspaceName:
        problem = _problem_with(raw)
        if problem:
            shown = raw if len(raw) <= 60 else raw[:57] + "..."
            raise FatalError(f"invalid workspace name {shown!r}: {problem}", hint=_HINT)
        return cls(raw)

    @property
    def dir_name(self) -> str:
        """The worktree directory name: '/' becomes '+', as Claude Code does."""
        return self.replace("/", "+")


def _problem_with(raw: str) -> str | None:
    if not raw:
        return "it is empty"
    if len(raw) > MAX_NAME_CHARS or len(raw.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_CHARS} characters ({MAX_NAME_BYTES} bytes)"
    if raw.startswith("-"):
        return "it starts with '-'"
    bad = sorted({c for c in raw if c in _FORBIDDEN or unicodedata.category(c)[0] in "CZ"})
    if bad:
        return "it contains " + " ".join(repr(c) for c in bad)
    if ".." in raw or "//" in raw or "@{" in raw or raw == "@":
        return "it contains '..', '//' or '@{'"
    if raw.startswith("/") or raw.endswith("/") or raw.endswith("."):
        return "it starts or ends with '/' or ends with '.'"
    for part in raw.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return f"the part {part!r} starts with '.' or ends with '.lock'"
    return _ambiguity(raw)


# Names git resolves before (or instead of) refs/heads/<name>: a branch by one of these names makes
# `git switch NAME`, `git log NAME` and friends mean something else.
_PSEUDO_REF = re.compile(r"^(?:[A-Z_]*HEAD|AUTO_MERGE)$")
_REF_PREFIXES = ("refs/", "heads/", "remotes/", "tags/")


def _ambiguity(raw: str) -> str | None:
    first = raw.split("/", 1)[0]
    if _PSEUDO_REF.match(first):
        return f"git reads {first!r} as its own pseudo-ref (HEAD, FETCH_HEAD, ORIG_HEAD...), not as a branch"
    if raw.startswith(_REF_PREFIXES):
        return f"it starts with {raw.split('/', 1)[0] + '/'!r}, so git would read it as a full or partial ref name"
    if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", raw):
        return "git would read it as a commit id"
    return None


class DbName(str):
    """A PostgreSQL database name made by treefork."""


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")


def root_db_name(repo_id: str) -> DbName:
    return DbName(f"tf_{repo_id}_root")


def db_name(repo_id: str, workspace: str) -> DbName:
    """`tf_<repo_id>_<slug>_<hash>`: the hash keeps names that slug alike apart."""
    digest = hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:8]
    prefix = f"tf_{repo_id}_"
    room = PG_MAX_IDENT_BYTES - len(prefix) - len(digest) - 1
    slug = _slug(workspace)[:room].rstrip("_") or "ws"
    return DbName(f"{prefix}{slug}_{digest}")


def db_prefix(repo_id: str) -> str:
    return f"tf_{repo_id}_"
