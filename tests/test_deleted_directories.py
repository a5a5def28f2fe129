"""`treefork rm NAME` from inside NAME's worktree, and any command from a directory that no longer exists
(issue "Real applications, as they are": rm failed with "`git` was not found", left the branch and a workspace
stuck at `removing`, and every later command from that directory reported "a bug")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import git, run_tf


def _names(repo: Path) -> set[str]:
    return {r["name"] for r in json.loads(run_tf(repo, "ls", "--json").out)}


def test_rm_from_inside_the_workspace_it_removes(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "new", "inside")
    wt = tf_server_repo.parent / f"{tf_server_repo.name}.worktrees" / "inside"
    assert wt.is_dir()
    r = run_tf(wt, "rm", "inside", check=False)
    assert r.rc == 0, r.text
    assert "removed workspace inside" in r.err
    assert str(tf_server_repo) in r.err  # where to cd now: the shell's directory is gone
    assert not wt.exists()
    assert "inside" not in _names(tf_server_repo)
    assert git(tf_server_repo, "branch", "--list", "inside").stdout.strip() == ""


def test_every_command_from_a_deleted_directory_fails_with_one_line(tf_server_repo: Path) -> None:
    gone = tf_server_repo / "gone"
    gone.mkdir()
    for args in (["ls"], ["url"], ["doctor"], ["new", "x"]):
        # a real process: its working directory is removed under it, as a shell's is
        code = (
            "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
            "from treefork.cli import main; sys.exit(main(sys.argv[2:]))"
        )
        gone.mkdir(exist_ok=True)
        r = subprocess.run([sys.executable, "-c", code, str(gone), *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "no longer exists" in lines[0] and "bug" not in lines[0], (args, r.stderr)
