"""`treefork sync`, the one entry point every agent integration runs: silent, idempotent, detached-safe,
and fail-loud when provisioning cannot happen."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import db_url, git, run_tf
from testing.cli import ls
from testing.server import can_connect

UNPROVISIONED = "unprovisioned.treefork.invalid"


def _add_without_hooks(repo: Path, *args: str) -> None:
    """`git worktree add` as Gemini and Codex run it: hooks off."""
    git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", *args)


def test_sync_quiet_provisions_once_then_is_a_silent_no_op(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    wt = tf_server_repo.parent / "s"
    _add_without_hooks(tf_server_repo, "-b", "s", str(wt))
    assert not (wt / ".env").exists() and "s" not in ls(tf_server_repo)
    first = run_tf(wt, "sync", "--quiet")
    assert first.out == "" and first.err == ""
    url = db_url(wt)
    assert can_connect(url) and url != db_url(tf_server_repo) and ls(tf_server_repo)["s"]["status"] == "ready"
    env_before = (wt / ".env").stat().st_mtime_ns
    again = run_tf(wt, "sync", "--quiet")
    assert (again.out, again.err) == ("", "") and (wt / ".env").stat().st_mtime_ns == env_before
    (wt / ".env").unlink()  # e.g. `git clean -ffdx`: the next sync writes it back, same database
    run_tf(wt, "sync", "--quiet")
    assert db_url(wt) == url


def test_sync_quiet_is_silent_where_there_is_nothing_to_do(tf_server_repo: Path, tmp_path: Path) -> None:
    assert run_tf(tf_server_repo, "sync", "--quiet").text == ""  # the main worktree
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")
    assert run_tf(plain, "sync", "--quiet").text == ""  # a repository that does not use treefork


def test_nested_detached_worktree_never_sees_the_main_env(tf_server_repo: Path) -> None:
    """A detached worktree under the main checkout (as .claude/ and .gemini/ worktrees are) gets its own env
    file; without one, dotenv's find_dotenv would walk up to the main worktree's."""
    nested = tf_server_repo / ".agent" / "worktrees" / "n1"
    git(tf_server_repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", "--detach", str(nested))
    run_tf(nested, "sync", "--quiet")
    from dotenv import find_dotenv

    found = subprocess.run(
        ["python", "-c", "from dotenv import find_dotenv; print(find_dotenv(usecwd=True))"],
        cwd=nested,
        capture_output=True,
        text=True,
        env={**os.environ},
    ).stdout.strip()
    assert Path(found) == nested / ".env" and find_dotenv  # its own file, not the main one
    assert db_url(nested) != db_url(tf_server_repo) and can_connect(db_url(nested))
    assert ls(tf_server_repo)["n1"]["branch"] is None


def test_early_failure_still_writes_a_fail_loud_url_and_records_the_worktree(tf_server_repo: Path) -> None:
    wt = tf_server_repo.parent / "early"
    _add_without_hooks(tf_server_repo, "-b", "early", str(wt))
    r = run_tf(wt, "sync", "--quiet", env={"TREEFORK_FAIL_AT": "new:after-db"}, check=False)
    assert r.rc != 0 and "treefork: error:" in r.err
    assert UNPROVISIONED in db_url(wt)  # never the main worktree's URL
    assert ls(tf_server_repo)["early"]["status"] == "unprovisioned"
    run_tf(wt, "sync", "--quiet")
    assert UNPROVISIONED not in db_url(wt) and ls(tf_server_repo)["early"]["status"] == "ready"


def test_unnameable_worktree_gets_a_fail_loud_url_and_doctor_lists_it(tf_server_repo: Path) -> None:
    long_branch = "b" * 220  # git takes it; a workspace name cannot: provisioning fails before it starts
    wt = tf_server_repo.parent / "long"
    _add_without_hooks(tf_server_repo, "-b", long_branch, str(wt))
    r = run_tf(wt, "sync", "--quiet", check=False)
    assert r.rc == 1 and "cannot name a workspace" in r.err and "git branch -m" in r.err
    assert UNPROVISIONED in db_url(wt)
    report = json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)
    checks = {c["name"]: c for c in report["checks"]}
    bare = checks["worktrees without a workspace"]
    assert bare["level"] == "fail" and bare["data"] == [str(wt)] and "treefork sync" in bare["hint"]
    git(wt, "branch", "-m", "short")
    run_tf(wt, "sync", "--quiet")
    assert ls(tf_server_repo)["short"]["status"] == "ready" and UNPROVISIONED not in db_url(wt)
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)["checks"]}
    assert checks["worktrees without a workspace"]["level"] == "ok"


def test_doctor_flags_an_agent_hook_that_cannot_fire(tf_server_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_server_repo, "install", "--gemini", "--claude")
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)["checks"]}
    assert checks["agent gemini"]["level"] == "ok" and checks["claude worktrees"]["level"] == "ok"
    (tf_server_repo / ".git" / "treefork" / "agent-hook").unlink()
    wt = Path(
        run_tf(
            tf_server_repo, "claude-hook", "create", input=json.dumps({"cwd": str(tf_server_repo), "name": "c1"})
        ).out.strip()
    )
    (wt / ".claude" / "settings.local.json").unlink()
    report = json.loads(run_tf(tf_server_repo, "doctor", "--json", check=False).out)
    gemini = [c for c in report["checks"] if c["name"] == "agent gemini"]
    assert any(c["level"] == "fail" and c["hint"] == "treefork install --gemini" for c in gemini)
    claude = {c["name"]: c for c in report["checks"]}["claude worktrees"]
    assert claude["level"] == "warn" and claude["data"] == [str(wt)] and claude["hint"].startswith("cp ")
    run_tf(tf_server_repo, "uninstall", "--gemini")
    assert "hooks" not in json.loads((tf_server_repo / ".gemini" / "settings.json").read_text())


def test_install_agents_detects_and_uninstall_agents_reverses(tf_server_repo: Path, tmp_path: Path) -> None:
    (tf_server_repo / ".gemini").mkdir()
    env = {"CODEX_HOME": str(tmp_path / "codex-home"), "PATH": "/usr/bin:/bin"}  # no agent CLI on PATH
    done = json.loads(run_tf(tf_server_repo, "install", "--agents", "--json", env=env).out)
    hooks = {d["hook"] for d in done}
    assert "gemini SessionStart" in hooks and not any(h.startswith(("codex", "claude", "opencode")) for h in hooks)
    assert "treefork/agent-hook" in (tf_server_repo / ".gemini" / "settings.json").read_text()
    run_tf(tf_server_repo, "uninstall", "--agents", env=env)
    assert "agent-hook" not in (tf_server_repo / ".gemini" / "settings.json").read_text()
    assert not (tmp_path / "codex-home" / "hooks.json").exists()
