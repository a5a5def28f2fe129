"""The real home directory stays untouched. During tests HOME points at a throwaway directory; this catches
what would write into the real one anyway (a path built before HOME moved, XDG_* variables, a fixed path)."""

from __future__ import annotations

from pathlib import Path

REAL_HOME = Path.home()  # read when the test session starts, before the fixtures move HOME

# Where git, treefork and neonctl write under a home. Not the agents' own directories (~/.claude, ~/.codex):
# the agent that runs the tests may write there at any time.
WATCHED = (
    ".gitconfig",
    ".config/git",
    ".config/treefork",
    ".config/neon",
    ".config/neonctl",
    ".local/share/treefork",
    ".local/state/treefork",
    ".cache/treefork",
)

Snapshot = dict[str, tuple[int, int]]


def snapshot(home: Path) -> Snapshot:
    """The visible top-level entries of `home` and every file under the watched places, with mtime and size."""
    seen: Snapshot = {}
    entries = [p for p in home.iterdir() if not p.name.startswith(".")] if home.is_dir() else []
    for rel in WATCHED:
        path = home / rel
        entries += [path, *path.rglob("*")] if path.is_dir() else [path] if path.exists() else []
    for path in entries:
        st = path.lstat()
        seen[str(path.relative_to(home))] = (st.st_mtime_ns, st.st_size)
    return seen


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """The paths that appeared, disappeared or changed."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
