"""reset, diff and merge on the neon backend: real git, the real CLI, the fake Neon API (restore and
compare_schema as neon-openapi.yaml describes them; the fake keeps a schema per branch, no rows)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import db_url, git
from neon_fake import PROJECT, FakeNeon, neon_env
from testing.cli import popen_tf
from testing.waits import wait_until

pytest_plugins = ["conftest_neon"]

USERS = "CREATE TABLE public.users (\n    id integer NOT NULL\n);\n"
USERS_EMAIL = "CREATE TABLE public.users (\n    id integer NOT NULL,\n    email text\n);\n"


def _new(tf_neon, repo: Path, name: str) -> Path:
    return Path(tf_neon(repo, "new", name).out.strip().splitlines()[-1])


def _ids(fake: FakeNeon) -> tuple[str, dict[str, str]]:
    return fake.branch_by_name(PROJECT, "main")["id"], fake.branch_names(PROJECT)


def test_reset_restores_from_the_parent_and_keeps_the_url(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    main_id, _ = _ids(fake_neon)
    fake_neon.set_schema(PROJECT, main_id, USERS)
    a = _new(tf_neon, neon_repo, "a")
    a_id = fake_neon.branch_names(PROJECT)["a"]
    fake_neon.set_schema(PROJECT, a_id, USERS + "CREATE TABLE public.junk (x int);\n")
    fake_neon.set_schema(PROJECT, main_id, USERS_EMAIL)  # the parent moved on since a was made
    url_before, requests_before = db_url(a), len(fake_neon.log)
    tf_neon(neon_repo, "reset", "a")
    assert fake_neon.schema(PROJECT, a_id) == USERS_EMAIL  # the parent's *current* state
    assert db_url(a) == url_before and fake_neon.branch_names(PROJECT)["a"] == a_id
    resets = [(m, p) for m, p in fake_neon.log[requests_before:] if p.endswith("/restore")]
    assert resets == [("POST", f"/projects/{PROJECT}/branches/{a_id}/restore")]


def test_reset_from_another_workspace(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    _new(tf_neon, neon_repo, "a")
    _new(tf_neon, neon_repo, "b")
    names = fake_neon.branch_names(PROJECT)
    fake_neon.set_schema(PROJECT, names["b"], USERS_EMAIL)
    tf_neon(neon_repo, "reset", "a", "--from", "b")
    assert fake_neon.schema(PROJECT, names["a"]) == USERS_EMAIL


def test_diff_shows_compare_schema_with_exit_codes(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    main_id, _ = _ids(fake_neon)
    fake_neon.set_schema(PROJECT, main_id, USERS)
    _new(tf_neon, neon_repo, "a")
    same = tf_neon(neon_repo, "diff", "a", check=False)
    assert same.rc == 0 and same.out == ""
    fake_neon.set_schema(PROJECT, fake_neon.branch_names(PROJECT)["a"], USERS_EMAIL)
    before = fake_neon.requests("GET", "/compare_schema")
    changed = tf_neon(neon_repo, "diff", "a", check=False)
    assert changed.rc == 4 and "+    email text" in changed.out
    assert fake_neon.requests("GET", "/compare_schema") == before + 1
    data = json.loads(tf_neon(neon_repo, "diff", "a", "--json", check=False).out)
    assert data["changed"] is True and data["parent"] == "root" and "TABLE public.users" in data["objects"]


def _merge_setup(repo: Path, tf_neon, script: str) -> Path:
    (repo / "migrate.py").write_text(script)
    (repo / "treefork.toml").write_text(f"migrate = [{json.dumps(sys.executable)}, 'migrate.py']\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "migrate config")
    a = _new(tf_neon, repo, "a")
    (a / "feature.txt").write_text("agent work\n")
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "feature")
    return a


# a migration that says it started (MARKER.1 on its first run, the fork; MARKER.2 on the parent), then waits for
# the test to apply its change to the fake and say go (MARKER.<n>.go holds its exit code)
WAITING_MIGRATION = """import os, sys, time, pathlib
base = os.environ["MARKER"]
n = 1
while pathlib.Path(f"{base}.{n}").exists():
    n += 1
tmp = pathlib.Path(f"{base}.tmp")
tmp.write_text(os.environ["DATABASE_URL"] + "\\n" + os.environ["DATABASE_URL_UNPOOLED"])
tmp.rename(f"{base}.{n}")
go = pathlib.Path(f"{base}.{n}.go")
while not go.exists():
    time.sleep(0.05)
sys.exit(int(go.read_text()))
"""


def _start_merge(repo: Path, fake: FakeNeon, marker: Path) -> subprocess.Popen[str]:
    return popen_tf(repo, "merge", "a", env={**neon_env(fake), "MARKER": str(marker)}, session=True)


def _run_started(marker: Path, n: int, p: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for the migration's n-th run; its (pooled, unpooled) URLs."""
    started = Path(f"{marker}.{n}")
    wait_until(started.exists, f"{started} appearing", timeout=120, process=p)
    pooled, unpooled = started.read_text().splitlines()
    return pooled, unpooled


def _go(marker: Path, n: int, rc: int) -> None:
    Path(f"{marker}.{n}.go").write_text(str(rc))


def _trial_passes(marker: Path, p: subprocess.Popen[str], fake: FakeNeon, repo: Path, tf_neon) -> None:
    """The first run is on a fork of main (not main itself), which the fake changes as the migration would."""
    pooled, _ = _run_started(marker, 1, p)
    assert pooled != tf_neon(repo, "url", "root").out.strip()
    trial = next(n for n in fake.branch_names(PROJECT) if "@merge-trial-" in n)
    fake.set_schema(PROJECT, fake.branch_names(PROJECT)[trial], USERS_EMAIL)
    _go(marker, 1, 0)


def test_merge_migrates_the_parent_then_removes_the_workspace(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon, tmp_path: Path
) -> None:
    main_id, _ = _ids(fake_neon)
    fake_neon.set_schema(PROJECT, main_id, USERS)
    a = _merge_setup(neon_repo, tf_neon, WAITING_MIGRATION)
    marker = tmp_path / "marker"
    p = _start_merge(neon_repo, fake_neon, marker)
    _trial_passes(marker, p, fake_neon, neon_repo, tf_neon)
    pooled, unpooled = _run_started(marker, 2, p)  # then on the parent, both URLs given
    assert fake_neon.schema(PROJECT, main_id) == USERS  # untouched until the fork's run passed
    fake_neon.set_schema(PROJECT, main_id, USERS_EMAIL)  # what the migration does to the parent's database
    _go(marker, 2, 0)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert pooled == tf_neon(neon_repo, "url", "root").out.strip()
    assert unpooled == tf_neon(neon_repo, "url", "root", "--direct").out.strip() != pooled
    assert (neon_repo / "feature.txt").read_text() == "agent work\n"
    assert fake_neon.schema(PROJECT, main_id) == USERS_EMAIL
    assert not a.exists() and fake_neon.branch_names(PROJECT) == {}  # workspace, fork and snapshot gone


def _assert_untouched(repo: Path, fake: FakeNeon, head: str, a: Path) -> None:
    main_id, names = _ids(fake)
    assert git(repo, "rev-parse", "HEAD").stdout.strip() == head
    assert not (repo / "feature.txt").exists() and git(repo, "status", "--porcelain").stdout == ""
    assert fake.schema(PROJECT, main_id) == USERS  # the half-applied migration is gone
    assert a.is_dir() and "a" in names
    assert not any("snapshot" in n or "@merge-trial-" in n for n in names)
    assert "merges" not in json.loads((repo / ".git" / "treefork" / "registry.json").read_text())


def test_migration_failing_on_the_fork_never_touches_the_parent(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon, tmp_path: Path
) -> None:
    main_id, _ = _ids(fake_neon)
    fake_neon.set_schema(PROJECT, main_id, USERS)
    a = _merge_setup(neon_repo, tf_neon, WAITING_MIGRATION)
    head = git(neon_repo, "rev-parse", "HEAD").stdout.strip()
    marker = tmp_path / "marker"
    posts = fake_neon.requests("POST")
    p = _start_merge(neon_repo, fake_neon, marker)
    _run_started(marker, 1, p)
    _go(marker, 1, 3)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "failed with exit code 3 on a fork" in err and "never touched" in err
    _assert_untouched(neon_repo, fake_neon, head, a)
    assert fake_neon.requests("POST", "/restore") == 0 and not Path(f"{marker}.2").exists()
    assert fake_neon.requests("POST") == posts + 1  # the fork, and nothing else


def test_failing_migration_on_the_parent_puts_code_and_data_back(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon, tmp_path: Path
) -> None:
    main_id, _ = _ids(fake_neon)
    fake_neon.set_schema(PROJECT, main_id, USERS)
    a = _merge_setup(neon_repo, tf_neon, WAITING_MIGRATION)
    head = git(neon_repo, "rev-parse", "HEAD").stdout.strip()
    marker = tmp_path / "marker"
    p = _start_merge(neon_repo, fake_neon, marker)
    _trial_passes(marker, p, fake_neon, neon_repo, tf_neon)
    _run_started(marker, 2, p)
    fake_neon.set_schema(PROJECT, main_id, USERS_EMAIL)  # half applied...
    _go(marker, 2, 3)  # ...then it fails
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "failed with exit code 3" in err and "put back" in err
    assert "clients are disconnected" in err  # said before the restore
    _assert_untouched(neon_repo, fake_neon, head, a)
    assert fake_neon.requests("POST", "/restore") == 1
    kept = [n for n in fake_neon.branch_names(PROJECT) if "before-restore" in n]
    assert len(kept) == 1 and "deletes it when the last of them is removed" in err
    tf_neon(neon_repo, "rm", "a", "--force")
    assert fake_neon.branch_names(PROJECT) == {}  # the preserved branch went with its last child


def test_interrupt_during_migration_puts_code_and_data_back(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon, tmp_path: Path
) -> None:
    main_id, _ = _ids(fake_neon)
    fake_neon.set_schema(PROJECT, main_id, USERS)
    a = _merge_setup(neon_repo, tf_neon, WAITING_MIGRATION)
    head = git(neon_repo, "rev-parse", "HEAD").stdout.strip()
    marker = tmp_path / "marker"
    p = _start_merge(neon_repo, fake_neon, marker)
    _trial_passes(marker, p, fake_neon, neon_repo, tf_neon)
    _run_started(marker, 2, p)
    fake_neon.set_schema(PROJECT, main_id, USERS_EMAIL)
    os.killpg(p.pid, signal.SIGINT)  # ^C in the terminal: treefork and the migration both get it
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    _assert_untouched(neon_repo, fake_neon, head, a)


def test_conflict_changes_nothing(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    a = _new(tf_neon, neon_repo, "a")
    (a / "README.md").write_text("agent\n")
    git(a, "commit", "-q", "-am", "agent edit")
    (neon_repo / "README.md").write_text("human\n")
    git(neon_repo, "commit", "-q", "-am", "human edit")
    head = git(neon_repo, "rev-parse", "HEAD").stdout.strip()
    posts = fake_neon.requests("POST")
    r = tf_neon(neon_repo, "merge", "a", check=False)
    assert r.rc == 1 and "conflicts in README.md" in r.err
    assert git(neon_repo, "rev-parse", "HEAD").stdout.strip() == head
    assert (neon_repo / "README.md").read_text() == "human\n" and git(neon_repo, "status", "--porcelain").stdout == ""
    assert a.is_dir() and fake_neon.requests("POST") == posts


def test_dirty_parent_refuses(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    a = _new(tf_neon, neon_repo, "a")
    (a / "f.txt").write_text("x\n")
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "f")
    (neon_repo / "README.md").write_text("uncommitted\n")
    r = tf_neon(neon_repo, "merge", "a", check=False)
    assert r.rc == 1 and "uncommitted changes" in r.err
    assert not (neon_repo / "f.txt").exists() and (neon_repo / "README.md").read_text() == "uncommitted\n"


def test_new_at_the_floor_writes_neon_context_and_env_pull_variables(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon
) -> None:
    fake_neon.op_polls = 1  # the operations are done by the first poll
    before = len(fake_neon.log)
    a = _new(tf_neon, neon_repo, "a")
    sent = fake_neon.log[before:]
    assert sent == [("POST", f"/projects/{PROJECT}/branches"), ("GET", f"/projects/{PROJECT}/operations")]
    bid = fake_neon.branch_names(PROJECT)["a"]
    assert json.loads((a / ".neon").read_text()) == {"projectId": PROJECT, "branchId": bid}
    assert git(a, "status", "--porcelain").stdout == ""  # .neon and .env are kept out of git
    ep = fake_neon.projects[PROJECT].endpoints[bid]["id"]
    assert f"@{ep}-pooler." in db_url(a)  # pooled
    assert f"@{ep}." in db_url(a, "DATABASE_URL_UNPOOLED") and db_url(a, "NEON_BRANCH") == "a"


def test_neon_git_sync_hook_is_recognised(repo: Path) -> None:
    from treefork.backends.neon.git_sync import neon_git_sync_hook_present

    assert not neon_git_sync_hook_present(repo)
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\n# neon:git-sync\nneon git sync\n")
    assert neon_git_sync_hook_present(repo)
    hook.rename(hook.with_name("post-checkout.legacy"))  # chained by treefork install
    assert neon_git_sync_hook_present(repo)
    (repo / ".git" / "hooks" / "post-checkout.legacy").unlink()
    git(repo, "config", "core.hooksPath", "custom-hooks")
    (repo / "custom-hooks").mkdir()
    (repo / "custom-hooks" / "post-checkout").write_text("#!/bin/sh\n# neon:git-sync\n")
    assert neon_git_sync_hook_present(repo)


def test_ls_shows_neon_expiry_and_stacking_on_it_is_refused(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    _new(tf_neon, neon_repo, "a")
    tf_neon(neon_repo, "new", "b", "--ttl", "1d")
    rows = {r["name"]: r for r in json.loads(tf_neon(neon_repo, "ls", "--json").out)}
    assert rows["b"]["expires_at"] == fake_neon.branch_by_name(PROJECT, "b")["expires_at"]
    assert rows["a"]["expires_at"] is None and rows["a"]["backend"] == "neon"
    posts = fake_neon.requests("POST")
    r = tf_neon(neon_repo, "new", "c", "--from", "b", check=False)
    assert r.rc == 1 and "does not allow children of an expiring branch" in r.err
    assert fake_neon.requests("POST") == posts and "c" not in fake_neon.branch_names(PROJECT)


def test_reset_refuses_a_workspace_with_stacked_children(neon_repo: Path, tf_neon, fake_neon: FakeNeon) -> None:
    _new(tf_neon, neon_repo, "a")
    _new(tf_neon, neon_repo, "b")
    tf_neon(neon_repo, "rm", "b")
    tf_neon(neon_repo, "new", "b", "--from", "a")
    r = tf_neon(neon_repo, "reset", "a", check=False)
    assert r.rc == 1 and "child branches (b)" in r.err and fake_neon.requests("POST", "/restore") == 0


def test_gc_leaves_a_running_merges_snapshot_and_drops_a_dead_ones(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon
) -> None:
    repo_id = json.loads((neon_repo / ".git" / "treefork" / "registry.json").read_text())["repo_id"]
    mark = {"treefork": "1", "treefork_repo": repo_id, "treefork_workspace": "<snapshot>"}
    fake_neon.add_foreign_branch(PROJECT, "live-snap", annotation={**mark, "treefork_pid": str(os.getpid())})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    fake_neon.add_foreign_branch(PROJECT, "dead-snap", annotation={**mark, "treefork_pid": dead.stdout.strip()})
    tf_neon(neon_repo, "gc")
    assert set(fake_neon.branch_names(PROJECT)) == {"live-snap"}


@pytest.mark.long  # node starts neonctl
def test_the_real_neon_cli_inside_a_worktree_targets_its_branch(
    neon_repo: Path, tf_neon, fake_neon: FakeNeon, tmp_path: Path
) -> None:
    from test_neon_conformance import neonctl_bin

    a = _new(tf_neon, neon_repo, "a")
    (neon_repo / ".neon").write_text(json.dumps({"projectId": PROJECT, "branchId": _ids(fake_neon)[0]}))
    cmd = [str(neonctl_bin()), "--api-host", fake_neon.url, "--no-analytics", "--api-key", fake_neon.api_key]
    cmd += ["--config-dir", str(tmp_path / "neonconfig"), "connection-string", "--pooled"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=a)
    assert r.returncode == 0, r.stderr
    ep = fake_neon.projects[PROJECT].endpoints[fake_neon.branch_names(PROJECT)["a"]]["id"]
    assert f"@{ep}-pooler." in r.stdout  # a's branch, not the main repo's .neon (the default branch)
