"""The git hooks, end to end: real git fires them, a real PostgreSQL backs the workspaces."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import db_url, git, run_tf
from testing.cli import gc_dry, ls
from testing.waits import wait_until
from treefork import platform

UNPROVISIONED = "unprovisioned.treefork.invalid"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(extra)
    return env


def _git_env(cwd: Path, *args: str, **extra: str):
    import subprocess

    return subprocess.run(["git", *args], cwd=cwd, env=_env(**extra), capture_output=True, text=True)


def test_worktree_add_provisions_and_branch_delete_drops(tf_repo: Path) -> None:
    run_tf(tf_repo, "install")
    main_env = (tf_repo / ".env").read_bytes()
    wt = tf_repo.parent / "x"
    r = git(tf_repo, "worktree", "add", "-b", "x", str(wt))
    assert r.returncode == 0
    url = db_url(wt)
    assert url != db_url(tf_repo) and "@localhost:" in url and UNPROVISIONED not in url
    row = ls(tf_repo)["x"]
    assert (row["status"], row["origin"], row["parent"]) == ("ready", "post-checkout", "root")
    assert (tf_repo / ".env").read_bytes() == main_env
    assert "napi_test_secret" not in (wt / ".env").read_text()  # secret keys are not copied

    git(tf_repo, "worktree", "remove", str(wt))
    git(tf_repo, "branch", "-D", "x")
    assert "x" not in ls(tf_repo)
    assert json.loads(run_tf(tf_repo, "gc", "--dry-run", "--json").out)["actions"] == []


def test_detached_worktree_is_named_from_its_directory_and_main_checkout_is_not_provisioned(
    tf_server_repo: Path,
) -> None:
    run_tf(tf_server_repo, "install")
    main_env = (tf_server_repo / ".env").read_bytes()
    d = tf_server_repo.parent / "d"
    git(tf_server_repo, "worktree", "add", "--detach", str(d))
    row = ls(tf_server_repo)["d"]
    assert (row["status"], row["branch"], row["path"]) == ("ready", None, str(d))
    assert UNPROVISIONED not in db_url(d) and db_url(d) != db_url(tf_server_repo)
    git(tf_server_repo, "checkout", "-q", "-b", "y")
    assert set(ls(tf_server_repo)) == {"root", "d"}
    assert (tf_server_repo / ".env").read_bytes() == main_env


def test_failed_provisioning_never_fails_git_and_sync_finishes(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    wt = tf_server_repo.parent / "f"
    r = _git_env(tf_server_repo, "worktree", "add", "-b", "f", str(wt), TREEFORK_FAIL_AT="new:after-db")
    assert r.returncode == 0, r.stderr
    assert "NOT provisioned" in r.stderr
    assert UNPROVISIONED in db_url(wt)
    assert ls(tf_server_repo)["f"]["status"] == "unprovisioned"
    doctor = run_tf(tf_server_repo, "doctor", "--json", check=False)
    assert doctor.rc == 4  # exitcodes.FOUND: a check failed
    checks = {c["name"]: c for c in json.loads(doctor.out)["checks"]}
    assert checks["unprovisioned"]["data"] == ["f"] and checks["unprovisioned"]["hint"] == "treefork sync f"
    run_tf(wt, "sync")
    run_tf(wt, "sync")  # idempotent
    assert ls(tf_server_repo)["f"]["status"] == "ready"
    assert UNPROVISIONED not in db_url(wt) and db_url(wt) != db_url(tf_server_repo)


def test_unsupported_branch_name_is_loud(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    wt = tf_server_repo.parent / "weird"
    r = git(tf_server_repo, "worktree", "add", "-b", "a,b", str(wt))
    assert "cannot name a workspace" in r.stderr
    assert UNPROVISIONED in db_url(wt)


def test_rename_keeps_database(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    wt = tf_server_repo.parent / "a"
    git(tf_server_repo, "worktree", "add", "-b", "a", str(wt))
    before = ls(tf_server_repo)["a"]
    git(wt, "branch", "-m", "a", "b")
    wait_until(lambda: ls(tf_server_repo)["a"]["branch"] == "b", "the registry following the rename", timeout=15)
    after = ls(tf_server_repo)["a"]
    assert after["db_branch"] == before["db_branch"] and after["status"] == "ready"
    assert gc_dry(tf_server_repo) == []


def test_parent_is_the_invoking_workspace(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    a = tf_server_repo.parent / "pa"
    git(tf_server_repo, "worktree", "add", "-b", "pa", str(a))
    git(a, "worktree", "add", "-b", "pb", str(tf_server_repo.parent / "pb"))
    rows = ls(tf_server_repo)
    # where the platform cannot tell which worktree git ran in (no process cwd), the rule's next step: the root
    assert rows["pb"]["parent"] == ("pa" if platform.can_inspect_processes() else rows["pa"]["parent"])


def test_foreign_hooks_are_chained_and_restored(tf_server_repo: Path) -> None:
    hooks = tf_server_repo / ".git" / "hooks"
    pc = b'#!/bin/sh\necho "$@" >> "$TF_MARK"\nexit 0\n'
    rt = b'#!/bin/sh\ncat >> "$TF_MARK.rt"\n'
    (hooks / "post-checkout").write_bytes(pc)
    (hooks / "reference-transaction").write_bytes(rt)
    for h in ("post-checkout", "reference-transaction"):
        (hooks / h).chmod(0o755)
    run_tf(tf_server_repo, "install")
    run_tf(tf_server_repo, "install")  # a no-op
    assert (hooks / "post-checkout.legacy").read_bytes() == pc
    mark = tf_server_repo.parent / "mark"
    wt = tf_server_repo.parent / "z"
    r = _git_env(tf_server_repo, "worktree", "add", "-b", "z", str(wt), TF_MARK=str(mark))
    assert r.returncode == 0
    assert mark.read_text().split()[0] == "0" * 40
    assert "refs/heads/z" in Path(str(mark) + ".rt").read_text()  # the legacy hook got the full stdin
    assert ls(tf_server_repo)["z"]["status"] == "ready"
    run_tf(tf_server_repo, "uninstall")
    assert (hooks / "post-checkout").read_bytes() == pc
    assert (hooks / "reference-transaction").read_bytes() == rt
    assert not (hooks / "post-checkout.legacy").exists()


def test_treeforks_own_git_changes_leave_its_hooks_standing_down(tf_server_repo: Path) -> None:
    """`new` and `rm` run git with TREEFORK_IN_PROGRESS set, so the installed hooks stand down in the shell, with no
    Python started to learn that the workspace is treefork's own work. A worktree git adds by hand still gets them."""
    hooks, mark = tf_server_repo / ".git" / "hooks", tf_server_repo.parent / "mark"
    for h in ("post-checkout", "reference-transaction"):  # chained after treefork's part: they see its environment
        (hooks / h).write_text(f"#!/bin/sh\necho \"{h} ${{TREEFORK_IN_PROGRESS:-unset}}\" >> '{mark}'\n")
        (hooks / h).chmod(0o755)
    run_tf(tf_server_repo, "install")
    run_tf(tf_server_repo, "new", "a")
    run_tf(tf_server_repo, "rm", "a")
    seen = mark.read_text().splitlines()
    assert "post-checkout 1" in seen and "reference-transaction 1" in seen  # the worktree add, the branch delete
    assert not [line for line in seen if line.startswith("post-checkout") and line != "post-checkout 1"]
    mark.unlink()
    git(tf_server_repo, "worktree", "add", "-q", "-b", "z", str(tf_server_repo.parent / "z"))
    assert "post-checkout unset" in mark.read_text().splitlines()
    assert ls(tf_server_repo)["z"]["status"] == "ready"


def test_legacy_exit_status_is_kept(tf_server_repo: Path) -> None:
    hooks = tf_server_repo / ".git" / "hooks"
    (hooks / "post-checkout").write_text("#!/bin/sh\nexit 3\n")
    (hooks / "post-checkout").chmod(0o755)
    run_tf(tf_server_repo, "install")
    r = git(tf_server_repo, "worktree", "add", "-b", "e", str(tf_server_repo.parent / "e"), check=False)
    assert r.returncode == 3
    assert ls(tf_server_repo)["e"]["status"] == "ready"  # our part ran anyway


def test_absolute_hooks_path(tf_server_repo: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared-hooks"
    git(tf_server_repo, "config", "core.hooksPath", str(shared))
    out = json.loads(run_tf(tf_server_repo, "install", "--json").out)
    assert {d["path"] for d in out} == {str(shared / "post-checkout"), str(shared / "reference-transaction")}
    git(tf_server_repo, "worktree", "add", "-b", "hp", str(tf_server_repo.parent / "hp"))
    assert ls(tf_server_repo)["hp"]["status"] == "ready"


def test_relative_hooks_path_is_refused(tf_server_repo: Path) -> None:
    git(tf_server_repo, "config", "core.hooksPath", "hooks")
    r = run_tf(tf_server_repo, "install", check=False)
    assert r.rc == 1 and "git config core.hooksPath" in r.err


def test_doctor_reports_hooks(tf_server_repo: Path) -> None:
    before = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json").out)["checks"]}
    assert before["hook post-checkout"]["level"] == "warn"
    run_tf(tf_server_repo, "install")
    (tf_server_repo / ".worktreeinclude").write_text(".env\n")
    report = json.loads(run_tf(tf_server_repo, "doctor", "--json").out)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert checks["hook post-checkout"]["level"] == "ok" and checks["hook reference-transaction"]["level"] == "ok"
    assert checks["backend"]["level"] == "ok" and checks["orphans"]["level"] == "ok"
    assert checks[".worktreeinclude"]["level"] == "warn"
    assert checks["agent claude"]["level"] == "ok"  # not used here: no `claude` on PATH, no .claude/
    (tf_server_repo / ".claude").mkdir()
    checks = {c["name"]: c for c in json.loads(run_tf(tf_server_repo, "doctor", "--json").out)["checks"]}
    assert checks["agent claude"]["level"] == "warn" and checks["agent claude"]["hint"] == "treefork install --claude"


def test_one_parent_rule_code_and_data_start_from_the_same_place(tf_server_repo: Path) -> None:
    """The issue's three examples, plus the plain case: git hook and `treefork new` agree."""
    import psycopg

    run_tf(tf_server_repo, "install")
    a = Path(json.loads(run_tf(tf_server_repo, "new", "feat-A", "--json").out)["path"])
    git(a, "commit", "-q", "--allow-empty", "-m", "on feat-A")
    with psycopg.connect(db_url(a), autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (v text)")
        conn.execute("INSERT INTO marker VALUES ('feat-A')")
    a_head = git(a, "rev-parse", "HEAD").stdout.strip()

    def forked_from_a(wt: Path) -> bool:
        with psycopg.connect(db_url(wt)) as conn:
            has = conn.execute("SELECT to_regclass('marker') IS NOT NULL").fetchone()[0]
            return bool(has) and conn.execute("SELECT v FROM marker").fetchall() == [("feat-A",)]

    base = tf_server_repo.parent
    git(tf_server_repo, "worktree", "add", "-q", "--track", "-b", "x", str(base / "x"), "feat-A")  # upstream
    git(tf_server_repo, "worktree", "add", "-q", "-b", "y", str(base / "y"), a_head)  # start point at feat-A's HEAD
    z = Path(json.loads(run_tf(a, "new", "z", "--json").out)["path"])  # `new` inside feat-A
    git(a, "worktree", "add", "-q", "-b", "w", str(base / "w"))  # `git worktree add` inside feat-A
    git(tf_server_repo, "worktree", "add", "-q", "-b", "m", str(base / "m"))  # from main, at main's HEAD
    rows = ls(tf_server_repo)
    for name, wt in (("x", base / "x"), ("y", base / "y"), ("z", z), ("w", base / "w")):
        assert rows[name]["parent"] == "feat-A", (name, rows[name])
        assert git(wt, "rev-parse", "HEAD").stdout.strip() == a_head and forked_from_a(wt)
    assert rows["m"]["parent"] == "root" and not forked_from_a(base / "m")


def test_parent_rule_among_several_workspaces_at_the_start_commit(tf_server_repo: Path) -> None:
    """Rule 2 with the HEADs of several workspaces and the root's: the root wins when its HEAD is the start
    commit too, else the first workspace by name whose HEAD is."""
    run_tf(tf_server_repo, "install")
    base = tf_server_repo.parent
    for name in ("q", "p"):
        run_tf(tf_server_repo, "new", name)
    git(tf_server_repo, "worktree", "add", "-q", "-b", "same", str(base / "same"))  # every HEAD is main's
    start = git(tf_server_repo, "rev-parse", "HEAD").stdout.strip()
    git(tf_server_repo, "commit", "-q", "--allow-empty", "-m", "root moves on")
    git(tf_server_repo, "worktree", "add", "-q", "-b", "old", str(base / "old"), start)  # p's and q's HEAD, not main's
    git(base / "app.worktrees" / "q", "commit", "-q", "--allow-empty", "-m", "q moves on")
    git(tf_server_repo, "worktree", "add", "-q", "-b", "old2", str(base / "old2"), start)  # old's, p's and same's HEAD
    rows = ls(tf_server_repo)
    assert (rows["same"]["parent"], rows["old"]["parent"], rows["old2"]["parent"]) == ("root", "p", "old")
