"""Env files: read with python-dotenv's own parser; rewrite only our keys, byte for byte elsewhere.

python-dotenv's parse_stream() splits a file into bindings whose original texts concatenate back to
the whole file. We replace the value inside our keys' bindings (keeping `export`, spacing, quoting
style, trailing comments and line endings), delete the bindings of keys that must not be copied,
and append keys that are missing. Every other byte stays as it was.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from treefork.errors import FatalError
from treefork.fsutil import atomic_write_text

BOM = "\ufeff"
DQ = '"'
# A value that fails loudly instead of silently reaching someone else's database.
UNPROVISIONED_HOST = "unprovisioned.treefork.invalid"
UNPROVISIONED_URL = f"postgresql://{UNPROVISIONED_HOST}/run_treefork_sync_to_provision_this_worktree"
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_@%+:,./-]*$")
_NEVER_UNQUOTED = set(" \t\r\n#'\"\\$`")


def exists(path: Path) -> bool:
    """The env file is there (a symlink counts: it is refused, not silently replaced)."""
    return path.is_symlink() or path.exists()


def expect_not_symlink(path: Path) -> None:
    """treefork never reads or writes an env file through a symlink: a branch can commit `.env -> /etc/shadow`,
    and a shared file must not be replaced by a copy or filled with a workspace's password."""
    if path.is_symlink():
        raise FatalError(
            f"{path} is a symlink (to {os.readlink(path)}); treefork never reads or writes an env file through a symlink",
            hint=f"make it a regular file of its own (rm {path}, then retry), and load any shared settings from a second file",
        )


def read(path: Path) -> str:
    expect_not_symlink(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise FatalError(f"{path} is not UTF-8 text", hint="save it as UTF-8") from None
    except IsADirectoryError:
        raise FatalError(
            f"{path} is a directory, not an env file",
            hint=f"move it aside (mv {path} {path}.d), or give treefork a file of its own (env_file = '.env.local' in treefork.toml)",
        ) from None
    except OSError as e:
        raise FatalError(
            f"cannot read {path}: {e.strerror}", hint=f"make it readable for you (ls -l {path}; chmod u+r {path})"
        ) from None


def values(text: str) -> dict[str, str | None]:
    """Key -> value, last definition wins (python-dotenv's rule)."""
    return {b.key: b.value for b in parse_stream(io.StringIO(text.removeprefix(BOM))) if b.key is not None}


def rewrite(text: str, updates: Mapping[str, str | None]) -> str:
    """Set each key to its value (None deletes the key). Every other byte is kept."""
    bom = BOM if text.startswith(BOM) else ""
    body = text.removeprefix(bom)
    newline = "\r\n" if "\r\n" in body else "\n"
    pieces: list[str] = []
    seen: set[str] = set()
    kept: list[tuple[str | None, bool]] = []  # the statements the result must still read as
    for binding in parse_stream(io.StringIO(body)):
        original = binding.original.string
        if binding.key is not None:
            _expect_one_assignment(original, binding.key, binding.original.line)
        if binding.key is None and _defines_removed_key(original, updates):
            pieces.append(_leading_space(original))  # a secret on a line dotenv cannot parse still goes
            continue
        if binding.key is None or updates.get(binding.key, "") is not None:
            kept.append((binding.key, binding.error))
        if binding.key is None or binding.key not in updates:
            pieces.append(original)
            continue
        seen.add(binding.key)
        new_value = updates[binding.key]
        if new_value is None:
            pieces.append(_leading_space(original))  # the binding goes, its own line ending too
        else:
            pieces.append(_replace_value(original, binding.key, new_value, newline))
    out = "".join(pieces)
    missing = [(k, v) for k, v in updates.items() if v is not None and k not in seen]
    if missing:
        if out and not out.endswith(("\n", "\r")):
            out += newline
        out += "".join(k + "=" + _quote(v, style="") + newline for k, v in missing)
    after = list(parse_stream(io.StringIO(out)))  # one parse of the result answers both checks below
    parsed = {b.key: b.value for b in after if b.key is not None}
    # it must still read as the same statements: a quote of ours may not close an unterminated one of the file's
    moved = _statements([(b.key, b.error) for b in after])[: len(_statements(kept))] != _statements(kept)
    for key, value in updates.items():  # e.g. an unterminated quote earlier in the file can swallow our line,
        if value is not None and (parsed.get(key) != value or moved):
            raise FatalError(
                f"cannot set {key} in the env file: python-dotenv cannot parse the text around it",
                hint="fix the env file's unterminated quote or malformed line (python-dotenv warns which), then retry",
            )
    return bom + out


def _statements(shape: list[tuple[str | None, bool]]) -> list[tuple[str | None, bool]]:
    """Bindings and unparseable statements; blanks and comments left out (where they fall may shift)."""
    return [s for s in shape if s[0] is not None or s[1]]


def write(path: Path, text: str) -> bool:
    """Atomically, mode 0600. Returns False when the file already had this content."""
    expect_not_symlink(path)
    try:
        return atomic_write_text(path, text, mode=0o600)
    except OSError as e:
        raise FatalError(
            f"cannot write {path}: {e.strerror}",
            hint="free some disk space or fix the directory's permissions; the old file is untouched",
        ) from None


_VALUE = re.compile(
    r"""(?P<pre>^\s*(?:export[ \t]+)?(?P<key>[^\s=]+)[ \t]*=[ \t]*)"""
    r"""(?P<val>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[^\r\n]*?)"""
    r"""(?P<post>(?:[ \t]+\#[^\r\n]*)?[ \t]*(?:\r\n|\n|\r)?)$""",
    re.DOTALL,
)


def _replace_value(original: str, key: str, value: str, newline: str) -> str:
    m = _VALUE.match(original)
    if not m or m.group("key").strip("'\"") != key:
        ending = original[len(original.rstrip("\r\n")) :] or ""
        return key + "=" + _quote(value, style=DQ) + ending
    old = m.group("val")
    style = old[0] if old[:1] in ("'", '"') else ""
    return m.group("pre") + _quote(value, style=style, like=old) + m.group("post")


_SECOND_ASSIGNMENT = re.compile(r"[ \t]+(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_]*=")


def _expect_one_assignment(original: str, key: str, line: int) -> None:
    """`OTHER=1 DATABASE_URL=x` is one variable to python-dotenv (OTHER, value `1 DATABASE_URL=x`) but two to
    a shell (`set -a; . .env`): the app would see a DATABASE_URL treefork never saw. Refused, not guessed."""
    m = _VALUE.match(original)
    value = m.group("val") if m else ""
    second = _SECOND_ASSIGNMENT.search(value) if value[:1] not in ("'", '"') else None
    if second:
        name = second.group(0).strip().removeprefix("export").strip().rstrip("=")
        raise FatalError(
            f"line {line} of the env file sets {key} to a value holding `{name}=`: one variable to python-dotenv, "
            f"but {key} and {name} to a shell (set -a; . .env)",
            hint="put each variable on a line of its own, or quote the value",
        )


def _defines_removed_key(original: str, updates: Mapping[str, str | None]) -> bool:
    m = re.match(r"""\s*(?:export[ \t]+)?["']?([A-Za-z_][A-Za-z0-9_.]*)["']?[ \t]*=""", original)
    return m is not None and m.group(1) in updates and updates[m.group(1)] is None


def _leading_space(original: str) -> str:
    """Blank lines that dotenv's parser attached to a binding belong to the file, not to the key."""
    leading = original[: len(original) - len(original.lstrip())]
    last_break = max(leading.rfind("\n"), leading.rfind("\r"))
    return leading[: last_break + 1]


def _unquoted_like(value: str, like: str) -> bool:
    unsafe = {c for c in value if not _SHELL_SAFE.match(c)}
    return bool(like) and not unsafe & _NEVER_UNQUOTED and unsafe <= set(like)


def _quote(value: str, *, style: str, like: str = "") -> str:
    """value in the quoting style given; unquoted only when it is shell-safe, or its characters that are not
    were in the old unquoted value `like` too (the app's own `?sslmode=...&x=y` stays unquoted)."""
    if style == "'" and "'" not in value and "\n" not in value and "\\" not in value:
        return f"'{value}'"
    if style == "" and (_SHELL_SAFE.match(value) or _unquoted_like(value, like)):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
