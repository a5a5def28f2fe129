"""Red-team round 3, finding 3: treefork's own processes import nothing from a worktree. A `treefork/` package
committed on a branch, or left untracked by an agent, must not run when git, an agent's hook, Claude's hooks or a
tmux pane start treefork there (`python -m treefork` puts the working directory first on sys.path)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import db_url, git, run_tf
from treefork import selfcmd
from treefork.agents import claude_settings


def _plant(where: Path, marker: Path) -> None:
    """A `treefork` package that records that it ran, as the report's repro plants it, and a `click` package
    (a dependency treefork imports first thing) that does the same."""
    pkg = where / "treefork"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\n")
    (where / "click").mkdir()
    (where / "click" / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('click\\n')\n")


def test_finding_3_a_treefork_package_on_a_branch_does_not_run_on_worktree_add(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    marker = tf_server_repo.parent / "PWNED"
    git(tf_server_repo, "checkout", "-q", "-b", "evil")
    _plant(tf_server_repo, marker)
    git(tf_server_repo, "add", "treefork")
    git(tf_server_repo, "commit", "-qm", "helper")
    git(tf_server_repo, "checkout", "-q", "-")
    review = tf_server_repo.parent / "review-evil"
    git(tf_server_repo, "worktree", "add", "-q", str(review), "evil")
    assert not marker.exists()
    assert db_url(review) != db_url(tf_server_repo)  # the real treefork provisioned it


def test_finding_3_an_untracked_package_does_not_run_from_the_agent_session_hook(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install", "--gemini")
    marker = tf_server_repo.parent / "PWNED"
    _plant(tf_server_repo, marker)
    hook = tf_server_repo / ".git" / "treefork" / "agent-hook"
    r = subprocess.run([str(hook)], cwd=tf_server_repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not marker.exists()


def test_finding_3_claudes_hook_command_and_every_self_start_ignore_the_working_directory(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    _plant(tmp_path, marker)
    # the command Claude's settings carry (WorktreeRemove runs it with the worktree as its directory)
    command = claude_settings.hook_command("remove") + " </dev/null"
    subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, timeout=60)
    # tmux panes, the rename follower, the demo and the systemd unit start treefork through selfcmd.argv
    r = subprocess.run([*selfcmd.argv("--version")], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "treefork" in r.stdout.lower()
    assert not marker.exists()
