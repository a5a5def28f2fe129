"""The reflink fork path, the README's headline, on a real reflink filesystem: an XFS image (reflink=1)
loop-mounted for this module. The rest of the suite runs on tmpfs, where every fork is a copy, so without this
module the clone path would never run. Root only (CI runs as root); skipped with the reason elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import db_url, make_repo, run_tf

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop-mounting an XFS image needs root (CI runs as root)")


def _sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def xfs() -> Iterator[Path]:
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("mkfs.xfs is not installed (apt package xfsprogs; .ci/run installs it)")
    # outside pytest's 0700 temporary directories: the server user must reach the home on it
    base = Path(tempfile.mkdtemp(prefix="treefork-test-xfs-", dir="/var/tmp"))
    base.chmod(0o755)
    image, mnt = base / "xfs.img", base / "mnt"
    mnt.mkdir()
    for step in (
        ["truncate", "-s", "1G", str(image)],
        ["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(image)],
        ["mount", "-o", "loop", str(image), str(mnt)],
    ):
        r = _sh(*step)
        if r.returncode != 0:
            pytest.skip(f"no reflink XFS here: `{' '.join(step)}` failed: {(r.stderr or r.stdout).strip()}")
    mnt.chmod(0o755)
    try:
        yield mnt
    finally:
        _sh("umount", str(mnt))
        if os.path.ismount(mnt):
            _sh("umount", "-l", str(mnt))
        shutil.rmtree(base, ignore_errors=True)


def _rows(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()


def test_a_fork_on_a_reflink_filesystem_is_a_clone_that_shares_its_parents_blocks(xfs: Path, tmp_path: Path) -> None:
    home = xfs / "home"
    env = {"TREEFORK_HOME": str(home)}
    repo = make_repo(tmp_path / "app")
    try:
        run_tf(repo, "init", "--no-import", env=env)
        root = run_tf(repo, "url", "root", env=env).out.strip()
        with psycopg.connect(root) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        parent_rows = _rows(root)
        made = json.loads(run_tf(repo, "new", "c", "--json", env=env).out)
        assert made["clone_method"] == "clone", made  # every file a reflink
        child = Path(made["path"])
        assert _rows(db_url(child)) == parent_rows  # the data, read back through the child's own URL
        with psycopg.connect(db_url(child)) as conn:
            conn.execute("UPDATE t SET v = 'child' WHERE id = 1")
        assert _rows(root)[0] == (1, "x" * 200)  # copy-on-write: the parent keeps its own
        row = {r["name"]: r for r in json.loads(run_tf(repo, "ls", "--json", env=env).out)}["c"]
        # what the child really adds on this disk is a fraction of what it holds (the shared extents are not its)
        data_bytes = sum(f.stat().st_blocks * 512 for f in (home / "clusters").glob("*-c-*/data/**/*") if f.is_file())
        assert row["db_disk_bytes"] is not None and 0 <= row["db_disk_bytes"] < data_bytes / 4, (row, data_bytes)
    finally:
        run_tf(repo, "server", "stop", env=env, check=False)
