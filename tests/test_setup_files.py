"""The setup-file integrations (`install --cursor/--conductor/--droid/--kilo`): merged with what the user has,
ours first, idempotent, no machine path; the setup command run the way each tool runs it (in the new worktree,
with the tool's documented variables, git hooks off so only the setup file provisions it, no treefork on PATH);
the teardown where the tool has one; uninstall gives back exactly the user's file; doctor reports each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import db_url, git, run_tf
from testing.cli import ls
from testing.server import can_connect

SHELL = shutil.which("zsh") or "/bin/sh"  # Conductor runs its scripts with zsh


def _env(**extra: str) -> dict[str, str]:
    """The tool's environment: no treefork on PATH (the launcher install wrote must be what runs)."""
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "treefork").exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "PATH": os.pathsep.join(path), **extra}


def _worktree(repo: Path, name: str) -> Path:
    """A worktree the tool made with no git hook firing: only its setup command can provision it."""
    wt = repo.parent / f"{name}-tool-worktree"
    git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", "-b", name, str(wt))
    return wt


def _sh(command: str, cwd: Path, env: dict[str, str], shell: str = "/bin/sh") -> subprocess.CompletedProcess[str]:
    return subprocess.run([shell, "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _checks(repo: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(run_tf(repo, "doctor", "--json", check=False).out)["checks"]}


def _assert_provisioned(repo: Path, wt: Path, name: str) -> str:
    url = db_url(wt)
    assert ls(repo)[name]["status"] == "ready" and url != db_url(repo) and can_connect(url)
    return url


def test_cursor(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    path = repo / ".cursor" / "worktrees.json"
    path.parent.mkdir()
    mine = {"setup-worktree": ["npm ci"], "other": 1}
    path.write_text(json.dumps(mine, indent=4) + "\n")
    original = path.read_text()
    run_tf(repo, "install", "--cursor")
    data = json.loads(path.read_text())
    assert data["other"] == 1 and data["setup-worktree"][1:] == ["npm ci"]  # ours first, theirs kept
    assert sys.executable not in path.read_text()
    before = path.read_text()
    run_tf(repo, "install", "--cursor")
    assert path.read_text() == before  # idempotent
    assert _checks(repo)["agent cursor"]["level"] == "ok"

    wt = _worktree(repo, "cur")
    ours = data["setup-worktree"][0]
    cp = _sh(ours, wt, _env(ROOT_WORKTREE_PATH=str(repo)))
    assert cp.returncode == 0, cp.stderr
    _assert_provisioned(repo, wt, "cur")

    run_tf(repo, "uninstall", "--cursor")
    assert json.loads(path.read_text()) == mine and "agent-hook" not in path.read_text()
    assert original  # the user's content is all that is left (key order kept, our indent)


def test_cursor_unix_list_wins_and_a_script_is_refused(tf_server_repo: Path) -> None:
    path = tf_server_repo / ".cursor" / "worktrees.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"setup-worktree-unix": ["make"], "setup-worktree": ["x"]}))
    run_tf(tf_server_repo, "install", "--cursor")
    data = json.loads(path.read_text())
    assert data["setup-worktree"] == ["x"] and data["setup-worktree-unix"][1:] == ["make"]
    path.write_text(json.dumps({"setup-worktree": "scripts/setup.sh"}))
    r = run_tf(tf_server_repo, "install", "--cursor", check=False)
    assert r.rc != 0 and "names a script" in r.err and "Traceback" not in r.err
    assert json.loads(path.read_text()) == {"setup-worktree": "scripts/setup.sh"}  # nothing half-written


def test_conductor_setup_and_archive(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    path = repo / "conductor.json"
    mine = {"scripts": {"setup": "npm install", "run": "npm run dev"}}
    path.write_text(json.dumps(mine))
    run_tf(repo, "install", "--conductor")
    scripts = json.loads(path.read_text())["scripts"]
    assert scripts["setup"].splitlines()[1:] == ["npm install"] and scripts["run"] == "npm run dev"
    assert "archive" in scripts and sys.executable not in path.read_text()

    wt = _worktree(repo, "cond")
    env = _env(CONDUCTOR_ROOT_PATH=str(repo), CONDUCTOR_WORKSPACE_PATH=str(wt), CONDUCTOR_WORKSPACE_NAME="cond")
    ours = scripts["setup"].splitlines()[0]  # the user's own `npm install` is theirs to run
    cp = _sh(ours, wt, env, SHELL)
    assert cp.returncode == 0, cp.stderr
    url = _assert_provisioned(repo, wt, "cond")
    cp = _sh(scripts["archive"], wt, env, SHELL)  # archive: the workspace goes, losing nothing
    assert cp.returncode == 0, cp.stderr
    assert "cond" not in ls(repo) and not can_connect(url) and not wt.exists()

    run_tf(repo, "uninstall", "--conductor")
    assert json.loads(path.read_text()) == mine


def test_conductor_archive_keeps_uncommitted_work(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install", "--conductor")
    scripts = json.loads((tf_server_repo / "conductor.json").read_text())["scripts"]
    wt = _worktree(tf_server_repo, "dirty")
    env = _env(CONDUCTOR_ROOT_PATH=str(tf_server_repo))
    assert _sh(scripts["setup"], wt, env, SHELL).returncode == 0
    (wt / "work.txt").write_text("not committed\n")
    git(wt, "add", "work.txt")
    cp = _sh(scripts["archive"], wt, env, SHELL)
    assert cp.returncode != 0 and "uncommitted" in cp.stderr
    assert (wt / "work.txt").exists() and ls(tf_server_repo)["dirty"]["status"] == "ready"


def test_droid_worktree_setup(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    run_tf(repo, "install", "--droid")
    path = repo / ".factory" / "worktree-setups" / "treefork.yaml"
    fields = dict(line.split(": ", 1) for line in path.read_text().splitlines() if not line.startswith("#"))
    assert fields["name"] == "treefork" and sys.executable not in path.read_text()
    wt = _worktree(repo, "dr")
    assert _sh(json.loads(fields["script"]), wt, _env()).returncode == 0
    url = _assert_provisioned(repo, wt, "dr")
    assert _sh(json.loads(fields["cleanup_script"]), wt, _env()).returncode == 0
    assert "dr" not in ls(repo) and not can_connect(url)
    run_tf(repo, "uninstall", "--droid")
    assert not path.exists()


def test_kilo_setup_script(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    script = repo / ".kilo" / "setup-script"
    script.parent.mkdir()
    mine = "#!/bin/sh\necho user-setup > user-setup.txt\n"
    script.write_text(mine)
    run_tf(repo, "install", "--kilo")
    assert os.access(script, os.X_OK) and sys.executable not in script.read_text()
    assert script.read_text().endswith("echo user-setup > user-setup.txt\n")
    before = script.read_text()
    run_tf(repo, "install", "--kilo")
    assert script.read_text() == before
    wt = _worktree(repo, "ki")
    (wt / ".env").write_text((repo / ".env").read_text())  # the Agent Manager copies the root .env first
    cp = subprocess.run(
        [str(script)], cwd=wt, env=_env(WORKTREE_PATH=str(wt), REPO_PATH=str(repo)), capture_output=True, text=True
    )
    assert cp.returncode == 0, cp.stderr
    _assert_provisioned(repo, wt, "ki")
    assert (wt / "user-setup.txt").exists()
    run_tf(repo, "uninstall", "--kilo")
    assert script.read_text() == mine


def test_setup_command_in_a_clone_without_treefork_says_so(tf_server_repo: Path, tmp_path: Path) -> None:
    """The file is committed; a teammate's clone has no launcher and no treefork on PATH: one clear line."""
    run_tf(tf_server_repo, "install", "--cursor")
    command = json.loads((tf_server_repo / ".cursor" / "worktrees.json").read_text())["setup-worktree"][0]
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(tf_server_repo), str(clone))
    cp = _sh(command, clone, _env())
    assert cp.returncode == 0 and cp.stdout == ""
    assert cp.stderr.count("\n") == 1 and "no database of its own" in cp.stderr and "treefork install" in cp.stderr


def test_agents_picks_the_setup_files_found_and_doctor_reports_them(tf_server_repo: Path) -> None:
    repo = tf_server_repo
    (repo / ".cursor").mkdir()
    (repo / "conductor.json").write_text("{}")
    checks = _checks(repo)
    assert checks["agent cursor"]["level"] == "warn" and checks["agent cursor"]["hint"] == "treefork install --cursor"
    done = json.loads(run_tf(repo, "install", "--agents", "--json").out)
    hooks = {d["hook"] for d in done}
    assert {"cursor setup", "conductor setup"} <= hooks and "droid setup" not in hooks and "kilo setup" not in hooks
    checks = _checks(repo)
    assert checks["agent cursor"]["level"] == "ok" and checks["agent conductor"]["level"] == "ok"
    run_tf(repo, "uninstall", "--agents")
    assert not (repo / ".cursor" / "worktrees.json").exists()
    assert json.loads((repo / "conductor.json").read_text()) == {}


@pytest.mark.parametrize("flag", ["--cursor", "--conductor", "--droid", "--kilo"])
def test_doctor_fails_when_the_launcher_is_gone(tf_server_repo: Path, flag: str) -> None:
    """A fresh clone with the committed setup file but no `treefork install`: doctor says what to run."""
    run_tf(tf_server_repo, "install", flag, env={"PATH": _env()["PATH"]})  # no kilo on PATH: no start command
    (tf_server_repo / ".git" / "treefork" / "agent-hook").unlink()
    check = [c for n, c in _checks(tf_server_repo).items() if n == f"agent {flag[2:]}" and c["level"] == "fail"]
    assert check and check[0]["hint"] == f"treefork install {flag}"
