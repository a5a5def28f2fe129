"""The neon backend end to end: real git, the real treefork CLI in a subprocess, the fake Neon API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import db_url, git
from neon_fake import PROJECT, FakeNeon, neon_env
from testing.repo import registry

pytest_plugins = ["conftest_neon"]


def _wt(out: str) -> Path:
    return Path(out.strip().splitlines()[-1])


def test_new_and_fork_use_neon_parents_and_both_urls(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    (neon_repo / "treefork.toml").write_text('direct_url_var = "DIRECT_URL"\n')
    a = _wt(tf_neon(neon_repo, "new", "a").out)
    b = _wt(tf_neon(neon_repo, "new", "b", "--from", "a").out)
    names = fake_neon.branch_names(PROJECT)
    assert set(names) == {"a", "b"}
    assert fake_neon.branch_by_name(PROJECT, "b")["parent_id"] == names["a"]
    ep = fake_neon.projects[PROJECT].endpoints[names["b"]]["id"]
    assert f"@{ep}-pooler." in db_url(b) and db_url(b).startswith("postgresql://neondb_owner:")
    assert f"@{ep}." in db_url(b, "DIRECT_URL")
    assert fake_neon.projects[PROJECT].passwords[names["b"]] in db_url(b)
    assert db_url(a) != db_url(b)
    reg = registry(neon_repo)
    assert reg["workspaces"]["b"]["db_id"] == names["b"]
    tf_neon(neon_repo, "rm", "b")
    tf_neon(neon_repo, "rm", "a")
    assert fake_neon.branch_names(PROJECT) == {}


@pytest.mark.waits  # Neon backoff: seconds of sleep
def test_retry_storms_leave_nothing_orphaned(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    fake_neon.faults = [(429, "0"), (423, None), (503, None), (429, "0")]
    tf_neon(neon_repo, "new", "a")
    fake_neon.fault_rate = 0.3
    for name in ("b", "c"):
        tf_neon(neon_repo, "new", name)
    fake_neon.fault_rate = 0.0
    reg = registry(neon_repo)
    assert {w["db_branch"]: w["db_id"] for w in reg["workspaces"].values()} == fake_neon.branch_names(PROJECT)
    assert sum(1 for _, p in fake_neon.log if p.endswith("/branches") and _ == "POST") >= 3
    fake_neon.fault_rate = 0.3
    tf_neon(neon_repo, "rm", "c")
    fake_neon.fault_rate = 0.0
    assert set(fake_neon.branch_names(PROJECT)) == {"a", "b"}


def test_409_adopts_our_branch_and_refuses_a_foreign_one(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    repo_id = registry(neon_repo)["repo_id"]
    ours = fake_neon.add_foreign_branch(
        PROJECT, "mine", annotation={"treefork": "1", "treefork_repo": repo_id, "treefork_workspace": "mine"}
    )
    # the registry does not know it (a crash after the POST): find_branch_or_none adopts it, no second branch
    tf_neon(neon_repo, "new", "mine")
    assert registry(neon_repo)["workspaces"]["mine"]["db_id"] == ours["id"]
    fake_neon.add_foreign_branch(PROJECT, "theirs")
    r = tf_neon(neon_repo, "new", "theirs", check=False)
    assert r.rc == 1
    assert "a Neon branch named theirs already exists and treefork did not create it" in r.err
    assert "theirs" not in registry(neon_repo)["workspaces"]
    assert not (neon_repo.parent / "app.worktrees" / "theirs").exists()


def test_409_adopt_path_when_listing_misses_it(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    """Another repo's branch with our workspace name: the 409 path must refuse (annotation names another repo)."""
    fake_neon.add_foreign_branch(
        PROJECT, "x", annotation={"treefork": "1", "treefork_repo": "ffffff", "treefork_workspace": "x"}
    )
    r = tf_neon(neon_repo, "new", "x", check=False)
    assert r.rc == 1 and "treefork did not create it" in r.err


def test_branch_limit_names_count_and_gc(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    fake_neon.branch_limit = 2
    tf_neon(neon_repo, "new", "a")
    r = tf_neon(neon_repo, "new", "b", check=False)
    assert r.rc == 1
    assert "2 branches" in r.err and "treefork gc" in r.err and "Free plan: 10" in r.err


def test_refuses_to_delete_a_branch_it_did_not_make(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    tf_neon(neon_repo, "new", "a")
    bid = fake_neon.branch_names(PROJECT)["a"]
    fake_neon.projects[PROJECT].annotations[bid] = {"owner": "someone"}
    r = tf_neon(neon_repo, "rm", "a", check=False)
    assert r.rc == 1 and "treefork did not create it" in r.err
    assert "a" in fake_neon.branch_names(PROJECT)


def test_rm_parent_with_children_is_a_plain_error(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    tf_neon(neon_repo, "new", "a")
    tf_neon(neon_repo, "new", "b", "--from", "a")
    r = tf_neon(neon_repo, "rm", "a", check=False)
    assert r.rc == 1 and "Traceback" not in r.err and "b" in r.err
    assert set(fake_neon.branch_names(PROJECT)) == {"a", "b"}


@pytest.mark.waits  # Neon operations polled to the end
def test_api_key_never_leaks(repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    key = fake_neon.api_key
    env_text = (repo / ".env").read_text().replace("napi_test_secret_never_copy", key)
    (repo / ".env").write_text(env_text)
    (repo / "treefork.toml").write_text('direct_url_var = "DIRECT_URL"\n')
    outputs = [tf_neon(repo, "init", "--backend", "neon", "--project-id", PROJECT)]
    outputs.append(tf_neon(repo, "new", "a"))
    outputs.append(tf_neon(repo, "new", "b", "--from", "a"))
    fake_neon.faults = [(503, "0")] * 40  # more than the client's attempts, without waiting
    outputs.append(tf_neon(repo, "new", "c", check=False))
    outputs.append(tf_neon(repo, "ls", check=False))
    outputs.append(tf_neon(repo, "new", "d", check=False, env={"NEON_API_KEY": key + "x"}))
    for r in outputs:
        assert key not in r.out and key not in r.err
    roots = [repo / ".git" / "treefork", *(p for p in (repo.parent / "app.worktrees").iterdir())]
    for root in roots:
        for f in root.rglob("*"):
            if f.is_file() and ".git" not in f.relative_to(root).parts:
                assert key.encode() not in f.read_bytes(), f
    for log in Path(os.environ["TREEFORK_HOME"]).rglob("treefork.log"):
        assert key.encode() not in log.read_bytes()
    wt_env = (repo.parent / "app.worktrees" / "a" / ".env").read_text()
    assert "NEON_API_KEY" not in wt_env


def test_api_key_from_main_env_file_and_401_names_source(repo: Path, fake_neon: FakeNeon) -> None:
    from conftest import run_tf

    env = {"NEON_API_HOST": fake_neon.url, "TREEFORK_NEON_POLL_SECONDS": "0.05"}
    r = run_tf(repo, "init", "--backend", "neon", "--project-id", PROJECT, env=env, check=False)
    assert r.rc == 1 and "was rejected by Neon (401)" in r.err and ".env" in r.err  # the sample key in .env
    r = run_tf(
        repo,
        "init",
        "--backend",
        "neon",
        "--project-id",
        PROJECT,
        env={**env, "NEON_API_KEY": "napi_wrong_key_xyz"},
        check=False,
    )
    assert (
        "the NEON_API_KEY environment variable was rejected by Neon (401)" in r.err
        and "napi_wrong_key_xyz" not in r.text
    )


def test_unknown_project_and_missing_key(repo: Path, fake_neon: FakeNeon) -> None:
    from conftest import run_tf

    env = neon_env(fake_neon)
    r = run_tf(repo, "init", "--backend", "neon", "--project-id", "nope-123", env=env, check=False)
    assert r.rc == 1 and "project nope-123 not found" in r.err
    (repo / ".env").write_text("DATABASE_URL=x\n")
    r = run_tf(repo, "init", "--backend", "neon", "--project-id", PROJECT, env={**env, "NEON_API_KEY": ""}, check=False)
    assert r.rc == 1 and "no Neon API key found" in r.err and "neonctl auth" in r.err


def test_ttl_sets_expiry_and_expiring_parent_is_refused(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    tf_neon(neon_repo, "new", "a", "--ttl", "1d")
    assert fake_neon.branch_by_name(PROJECT, "a")["expires_at"].endswith("Z")
    r = tf_neon(neon_repo, "new", "b", "--from", "a", check=False)
    assert r.rc == 1 and "expiring branch" in r.err


def test_branch_name_template_uses_git_branch(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    (neon_repo / "treefork.toml").write_text('[neon]\nbranch_name_template = "tf/{branch}"\n')
    tf_neon(neon_repo, "new", "w1", "--branch", "feature/x")
    assert "tf/feature/x" in fake_neon.branch_names(PROJECT)
    git(neon_repo, "status")
