"""A kill -9 mid-dump (`diff`, `merge`'s schema check, a fork point) used to leave a `treefork-dump-*`
directory in $TMPDIR holding a passfile with the database's password, which nothing removed. The directory
is now under treefork's home, named for the process, and the next dump or `treefork gc` removes it once that
process is gone."""

from __future__ import annotations

from pathlib import Path

from conftest import run_tf
from testing.cli import new
from testing.server import home


def leftovers(tmpdir: Path) -> list[Path]:
    """Every dump directory: in treefork's home, and any in $TMPDIR (where they used to be)."""
    return sorted([*(home() / "tmp").glob("dump-*"), *tmpdir.glob("treefork-dump-*")])


def kill_mid_dump(repo: Path, env: dict[str, str]) -> Path:
    r = run_tf(repo, "diff", "a", env={**env, "TREEFORK_CRASH_AT": "dump:passfile-written"}, check=False)
    assert r.rc == -9, r.err  # SIGKILL, with the passfile written and pg_dump not yet run
    (left,) = leftovers(Path(env["TMPDIR"]))
    assert (left / "pgpass").read_text().count(":") == 4  # what a kill -9 leaves: the password, 0600
    assert (left / "pgpass").stat().st_mode & 0o077 == 0 and left.stat().st_mode & 0o077 == 0
    return left


def test_a_dump_killed_with_kill_9_leaves_a_passfile_that_gc_removes(tf_repo: Path, tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    new(tf_repo, "a")
    kill_mid_dump(tf_repo, env)
    run_tf(tf_repo, "gc", env=env)
    assert leftovers(tmp_path) == []


def test_a_dump_killed_with_kill_9_leaves_a_passfile_that_the_next_dump_removes(tf_repo: Path, tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    new(tf_repo, "a")
    kill_mid_dump(tf_repo, env)
    r = run_tf(tf_repo, "diff", "a", env=env, check=False)
    assert r.rc == 0, r.err  # nothing changed in a
    assert leftovers(tmp_path) == []
