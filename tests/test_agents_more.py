"""The agents added in December (CONTRACTS C2), each its newest npm release, offline: GitHub Copilot CLI (its
worktrees are treefork's own layout), Qwen Code (it rewrites core.hooksPath), Kilo (--no-checkout; the project
start command), Factory Droid, Auggie. Each makes its worktree before it needs a login, which it cannot get here."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agents_support import agent_env, cli, install_all
from conftest import db_url, git, run_tf
from testing.cli import gc_dry, ls
from testing.server import can_connect
from testing.waits import wait_until


@pytest.fixture(scope="module")
def agent_clis() -> dict:
    """Marks these tests agent_cli (conftest); each test installs the newest CLI it drives (agents_support)."""
    return install_all()


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


# ---- GitHub Copilot CLI: `copilot --worktree NAME` is `git worktree add -b NAME <repo>.worktrees/NAME HEAD` ----
def _copilot(repo: Path, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "agent-home"
    home.mkdir(exist_ok=True)
    return _run([str(cli("copilot").exe), "--worktree", name, "-p", "hi"], repo, agent_env(home))


def test_copilot_worktree_is_provisioned_by_the_git_hook(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_repo, "install")
    cp = _copilot(tf_repo, tmp_path, "c1")  # it fails at its login, after making the worktree
    wt = tf_repo.parent / f"{tf_repo.name}.worktrees" / "c1"
    assert wt.is_dir(), cp.stdout + cp.stderr
    row = ls(tf_repo)["c1"]
    assert row["status"] == "ready" and Path(row["path"]) == wt and row["branch"] == "c1"
    url = db_url(wt)
    assert url != db_url(tf_repo) and can_connect(url)
    run_tf(tf_repo, "rm", "c1")
    assert not wt.exists() and not can_connect(url) and gc_dry(tf_repo) == []


def test_treefork_new_then_copilot_worktree_joins_that_workspace(
    agent_clis: dict, tf_repo: Path, tmp_path: Path
) -> None:
    """Same path, same branch: Copilot reuses the worktree, so its session works in workspace x, on x's
    database; nothing is made twice."""
    run_tf(tf_repo, "install")
    made = json.loads(run_tf(tf_repo, "new", "x", "--json").out)
    url = db_url(Path(made["path"]))
    cp = _copilot(tf_repo, tmp_path, "x")
    assert "Reusing existing worktree" in cp.stdout + cp.stderr, cp.stdout + cp.stderr
    assert list(ls(tf_repo)) == ["root", "x"] and db_url(Path(made["path"])) == url
    assert len(git(tf_repo, "worktree", "list", "--porcelain").stdout.strip().split("\n\n")) == 2


def test_copilot_worktree_then_treefork_new_returns_it(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    """`treefork new y` after `copilot --worktree y`: the workspace the git hook made is returned, not remade."""
    run_tf(tf_repo, "install")
    _copilot(tf_repo, tmp_path, "y")
    wt = tf_repo.parent / f"{tf_repo.name}.worktrees" / "y"
    url = db_url(wt)
    r = run_tf(tf_repo, "new", "y", "--json")
    made = json.loads(r.out)
    assert made["existed"] is True and Path(made["path"]) == wt and made["origin"] == "post-checkout"
    assert db_url(wt) == url and list(ls(tf_repo)) == ["root", "y"]
    plain = run_tf(tf_repo, "new", "y")
    assert "already exists" in plain.err and "post-checkout" in plain.err


# ---- Qwen Code: provisioned by post-checkout, then core.hooksPath points at .husky/ ---------------------------
def test_qwen_rewrites_hooks_path_and_treefork_says_so(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    node = cli("node22").exe  # Qwen Code needs node >= 22
    qwen = cli("qwen").exe
    (tf_repo / ".husky").mkdir()
    (tf_repo / ".husky" / "pre-commit").write_text("exit 0\n")
    git(tf_repo, "add", ".husky")
    git(tf_repo, "commit", "-q", "-m", "husky")
    run_tf(tf_repo, "install", "--qwen")
    assert "agent-hook" in (tf_repo / ".qwen" / "settings.json").read_text()
    home = tmp_path / "agent-home"
    home.mkdir()
    env = agent_env(home, PATH=f"{node.parent}{os.pathsep}{os.environ['PATH']}", OPENAI_API_KEY="dummy",
                    OPENAI_BASE_URL="http://127.0.0.1:9/v1")  # fmt: skip
    cp = _run([str(qwen), "--worktree", "s1", "--auth-type", "openai", "-p", "hi"], tf_repo, env)
    wt = tf_repo / ".qwen" / "worktrees" / "s1"
    assert wt.is_dir(), cp.stdout + cp.stderr
    assert ls(tf_repo)["worktree-s1"]["status"] == "ready" and can_connect(db_url(wt))
    hooks_path = git(tf_repo, "config", "--get", "core.hooksPath").stdout.strip()
    assert Path(hooks_path).name == ".husky", "Qwen Code no longer rewrites core.hooksPath: update CONTRACTS C2"
    check = {c["name"]: c for c in json.loads(run_tf(tf_repo, "doctor", "--json", check=False).out)["checks"]}
    assert check["core.hooksPath"]["level"] == "fail" and "Qwen Code" in check["core.hooksPath"]["message"]
    # the next `git worktree add` is not provisioned; the first sync in it says why
    other = tf_repo.parent / "plain"
    git(tf_repo, "worktree", "add", "-q", "-b", "plain", str(other))
    assert "plain" not in ls(tf_repo)
    r = run_tf(other, "sync", "--quiet")
    assert "core.hooksPath" in r.err and ls(tf_repo)["plain"]["status"] == "ready"
    # Qwen's own next worktree gets no post-checkout now: its SessionStart hook (`install --qwen`) provisions it
    cp = _run([str(qwen), "--worktree", "s2", "--auth-type", "openai", "-p", "hi"], tf_repo, env)
    wt2 = tf_repo / ".qwen" / "worktrees" / "s2"
    assert ls(tf_repo)["worktree-s2"]["status"] == "ready", cp.stdout + cp.stderr
    assert db_url(wt2) not in (db_url(tf_repo), db_url(wt)) and can_connect(db_url(wt2))


# ---- Kilo: `kilo worktree create` adds with --no-checkout, then runs the project's start command -----------
def test_kilo_worktree_create_and_remove(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    kilo = cli("kilo").exe
    home = tmp_path / "agent-home"
    home.mkdir()
    path_env = f"{kilo.parent}{os.pathsep}{os.environ['PATH']}"
    run_tf(tf_repo, "install", "--kilo", env={"HOME": str(home), "PATH": path_env})
    assert (tf_repo / ".kilo" / "setup-script").is_file()
    env = agent_env(home, PATH=path_env)
    cp = _run([str(kilo), "worktree", "create", "kw"], tf_repo, env)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    wt = tf_repo / ".kilo" / "worktrees" / "kw"
    wait_until(lambda: "kw" in ls(tf_repo) and (wt / ".env").is_file(), "kilo's start command", timeout=120)
    url = db_url(wt)
    assert ls(tf_repo)["kw"]["status"] == "ready" and url != db_url(tf_repo) and can_connect(url)
    cp = _run([str(kilo), "worktree", "remove", "kw"], tf_repo, env)  # remove --force + branch -D: hooks fire
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert not wt.exists() and "kw" not in ls(tf_repo) and not can_connect(url)
    run_tf(tf_repo, "uninstall", "--kilo", env={"HOME": str(home), "PATH": path_env})
    assert not (tf_repo / ".kilo" / "setup-script").exists()


# ---- Factory Droid: `droid exec -w NAME` (hooks on); on exit it removes the folder and keeps the branch --------
def test_droid_exec_worktree(agent_clis: dict, tf_repo: Path, tmp_path: Path) -> None:
    droid = cli("droid").exe
    home = tmp_path / "agent-home"
    home.mkdir()
    run_tf(tf_repo, "install", "--droid")
    cp = _run([str(droid), "exec", "-w", "dw", "hi"], tf_repo, agent_env(home, FACTORY_API_KEY="dummy"))
    out = cp.stdout + cp.stderr
    assert "Created worktree" in out and "branch: dw" in out, out
    row = ls(tf_repo).get("dw")  # provisioned by post-checkout; droid removed the folder when it failed
    assert row is not None and row["worktree"] != "present", out
    assert [a["name"] for a in gc_dry(tf_repo)] == ["dw"]
    run_tf(tf_repo, "gc")
    assert "dw" not in ls(tf_repo) and gc_dry(tf_repo) == []
    assert "dw" in git(tf_repo, "branch", "--list").stdout  # droid keeps the branch; so does gc


def test_auggie(agent_clis: dict) -> None:
    cli("auggie")  # installs: the version is recorded, but its worktrees cannot be made here
    pytest.skip(
        "Auggie makes worktrees only for its daemon agents, which need an Augment login before any git "
        "command: not tested offline (docs/agents.md); its `git worktree add` fires post-checkout"
    )
