"""Schema diffs: a normalised `pg_dump --schema-only` of two databases, compared object by object.

Noise is removed before comparing: ownership, privileges, comments, security labels, `SET` lines,
pg_dump's random `\\restrict` keys, and the order in which pg_dump happens to print objects. The result
is a unified diff per changed object (`--- base/TABLE public.users` / `+++ branch/TABLE public.users`),
so a reviewer reads it like `git diff`, and `changed_objects` can list what changed.

The password never reaches a command line: it goes to pg_dump through a 0600 passfile, in a 0700 directory
under treefork's home named for the process (`tmp/dump-<pid>-*`). A process killed mid-dump (kill -9, a power
cut) cannot remove it, so the next dump, and `treefork gc`, remove those whose process is gone
(`sweep_dead_dumps`).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from treefork import debug, proc

_HEADER = re.compile(r"^-- Name: (?P<name>.+?); Type: (?P<type>[^;]+); Schema: (?P<schema>[^;]+);")
_NOISE = re.compile(
    r"^(SET |SELECT pg_catalog\.set_config|\\restrict |\\unrestrict |GRANT |REVOKE |COMMENT ON |SECURITY LABEL |"
    r"ALTER DEFAULT PRIVILEGES |ALTER .+ OWNER TO )"
)
DUMP_FLAGS = (
    "--schema-only",
    "--no-owner",
    "--no-privileges",
    "--no-comments",
    "--no-security-labels",
    "--no-tablespaces",
    "--no-publications",
    "--no-subscriptions",
)


def dump(url: str) -> str:
    """`pg_dump --schema-only` of the database at url, with the embedded wheel's pg_dump."""
    from treefork.backends.local.dist import wheel_bin_dir

    parts = urlsplit(url)
    password = unquote(parts.password or "")
    host = parts.hostname or ""
    netloc = (
        (quote_user(parts.username) + "@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    )
    safe_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with _own_directory() as tmp:
        passfile = tmp / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(":".join(_pgpass_escape(v) for v in ("*", "*", "*", "*", password)) + "\n")
        env["PGPASSFILE"] = str(passfile)
        debug.crash_point("dump:passfile-written")
        out = proc.run(
            str(wheel_bin_dir() / "pg_dump"),
            *DUMP_FLAGS,
            "--dbname",
            safe_url,
            env=env,
            hint="check that the database is reachable (treefork ls)",
        ).out
    return out


_DUMPS = "tmp"  # under treefork's home
_PREFIX = "dump-"


@contextlib.contextmanager
def _own_directory() -> Iterator[Path]:
    """A 0700 directory for one dump's passfile, named for this process; removed after it."""
    where = _dumps_dir()
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    sweep_dead_dumps()
    tmp = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=where))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _dumps_dir() -> Path:
    from treefork import paths

    return paths.treefork_home() / _DUMPS


def sweep_dead_dumps() -> list[Path]:
    """Remove the dump directories whose process is gone (killed mid-dump); returns them."""
    try:
        entries = list(_dumps_dir().iterdir())
    except OSError:
        return []
    gone = [e for e in entries if _owner_pid(e.name) is not None and not _alive(_owner_pid(e.name) or 0)]
    for entry in gone:
        shutil.rmtree(entry, ignore_errors=True)
    return gone


def _owner_pid(name: str) -> int | None:
    pid = name.removeprefix(_PREFIX).partition("-")[0]
    return int(pid) if name.startswith(_PREFIX) and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def quote_user(user: str | None) -> str:
    from urllib.parse import quote

    return quote(unquote(user or ""), safe="")


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def objects(dump_text: str) -> dict[str, str]:
    """'TYPE schema.name' -> the object's normalised SQL, from pg_dump's `-- Name:` headers."""
    return {k: "\n".join(lines) for k, (_, lines) in _blocks(dump_text).items()}


def normalise(dump_text: str) -> str:
    """The dump without its noise, objects in key order: what a fork point records. `objects` reads it back
    as it reads the dump itself."""
    out = []
    for header, lines in _blocks(dump_text).values():
        out += ["--", header, "--", "", *lines, ""]
    return "\n".join(out) + "\n"


def _blocks(dump_text: str) -> dict[str, tuple[str, list[str]]]:
    """'TYPE schema.name' -> (its `-- Name:` header without the owner, its SQL lines), in key order."""
    blocks: dict[str, tuple[str, list[str]]] = {}
    current: list[str] | None = None
    for line in dump_text.splitlines():
        m = _HEADER.match(line)
        if m:
            key = f"{m.group('type')} {_qualified(m.group('schema'), m.group('name'))}"
            current = blocks.setdefault(key, (m.group(0), []))[1]
            continue
        if current is None or line.startswith("--") or not line.strip() or _NOISE.match(line):
            continue
        current.append(line.rstrip())
    return {k: v for k, v in sorted(blocks.items()) if v[1]}


def _qualified(schema: str, name: str) -> str:
    return name if schema == "-" else f"{schema}.{name}"


def diff_dumps(base: str, branch: str) -> str:
    """A unified diff per changed object, in a stable order. Empty text means the same schema."""
    return diff_objects(objects(base), objects(branch))


def diff_objects(a: dict[str, str], b: dict[str, str]) -> str:
    """diff_dumps on dumps already read by `objects`."""
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key):
            continue
        before = a[key].splitlines(keepends=False) if key in a else []
        after = b[key].splitlines(keepends=False) if key in b else []
        out += difflib.unified_diff(
            before,
            after,
            fromfile=f"base/{key}" if key in a else "/dev/null",
            tofile=f"branch/{key}" if key in b else "/dev/null",
            lineterm="",
        )
    return "\n".join(out) + ("\n" if out else "")


def diff_urls(branch_url: str, base_url: str) -> str:
    """The schema difference base -> branch of two databases (libpq URLs)."""
    return diff_dumps(dump(base_url), dump(branch_url))


_FILE_HEADER = re.compile(r"^(?:---|\+\+\+) (?:base|branch)/(?P<key>.+)$")
_STATEMENT = re.compile(
    r"^[-+ ]\s*(?:CREATE|ALTER|DROP)\s+(?:OR REPLACE\s+)?(?:UNIQUE\s+)?"
    r"(?P<type>TABLE|INDEX|FUNCTION|VIEW|MATERIALIZED VIEW|SEQUENCE|TYPE|TRIGGER|SCHEMA|EXTENSION|PROCEDURE)\s+"
    r"(?:IF (?:NOT )?EXISTS\s+)?(?:ONLY\s+)?(?P<name>[\w.\"]+)",
    re.IGNORECASE,
)


def changed_objects(diff_text: str) -> list[str]:
    """'TYPE name' of every object a diff touches: from treefork's per-object headers, else (Neon's
    whole-dump diff) from the CREATE/ALTER/DROP statement that a changed line is part of."""
    lines = diff_text.splitlines()
    headers = [m.group("key") for m in map(_FILE_HEADER.match, lines) if m]
    if headers:
        return list(dict.fromkeys(headers))
    found: list[str] = []
    current: str | None = None
    for line in lines:
        header = _FILE_HEADER.match(line)
        if header or line.startswith(("---", "+++", "@@")):
            current = None
            key = header.group("key") if header else None
        else:
            s = _STATEMENT.match(line)
            if s:
                current = f"{s.group('type').upper()} {s.group('name').strip(chr(34))}"
            elif line.startswith(" ") and line.strip().endswith(";"):
                current = None if not line.startswith("  ") else current
            key = current if line.startswith(("+", "-")) else None
        if key and key not in found:
            found.append(key)
    return found
