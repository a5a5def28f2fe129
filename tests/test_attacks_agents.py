"""Red-team round 3 (../shared/redteam/round3.md), the agents' hooks: each test replays a finding's attack
with real git and the real `claude-hook` entry fed the JSON Claude Code sends, and checks it now fails."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import db_url, git, run_tf
from testing import claude
from testing.cli import ls
from testing.server import can_connect


def test_finding_14_claude_create_with_a_treefork_new_name_is_refused(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install", "--claude")
    other = Path(json.loads(run_tf(tf_server_repo, "new", "dupname", "--json").out)["path"])
    r = claude.create(tf_server_repo, "dupname", check=False)
    assert r.rc == 1 and "already exists" in r.err and " ready:" not in r.err and r.out == ""
    claude_path = tf_server_repo / ".claude" / "worktrees" / "dupname"
    assert not claude_path.exists()  # no worktree with no env file, where the app would find the main .env
    assert git(tf_server_repo, "branch", "--list", "worktree-dupname").stdout.strip() == ""
    row = ls(tf_server_repo)["dupname"]
    assert row["origin"] == "new" and Path(row["path"]) == other and can_connect(db_url(other))
    # Claude's own name again still resumes its own worktree
    wt = Path(claude.create(tf_server_repo, "mine").out.strip())
    assert claude.create(tf_server_repo, "mine").out.strip() == str(wt)


def test_finding_21_claude_remove_keeps_a_locked_user_worktree(tf_server_repo: Path) -> None:
    user = tf_server_repo.parent / f"{tf_server_repo.name}-userwork"
    git(tf_server_repo, "worktree", "add", "-q", "-b", "userwork", str(user))  # no hooks installed: no workspace
    (user / "notes.txt").write_text("precious\n")
    git(tf_server_repo, "worktree", "lock", str(user))
    r = claude.remove(user, user, check=False)
    assert r.rc == 1 and "not a worktree treefork made for Claude Code" in r.err
    assert (user / "notes.txt").read_text() == "precious\n"
    assert git(tf_server_repo, "branch", "--list", "userwork").stdout.strip() != ""


def test_finding_21_claude_remove_keeps_a_treefork_new_workspace(tf_server_repo: Path) -> None:
    wk = Path(json.loads(run_tf(tf_server_repo, "new", "wk2", "--json").out)["path"])
    url = db_url(wk)
    (wk / "precious.txt").write_text("uncommitted precious\n")
    git(tf_server_repo, "worktree", "lock", str(wk))
    r = claude.remove(wk, wk, check=False)
    assert r.rc == 1 and "made by `treefork new`" in r.err and "treefork rm wk2" in r.err
    assert (wk / "precious.txt").read_text() == "uncommitted precious\n"
    assert ls(tf_server_repo)["wk2"]["status"] == "ready" and can_connect(url)


def test_finding_21_claude_remove_keeps_a_locked_or_dirty_claude_worktree(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install", "--claude")
    wt = Path(claude.create(tf_server_repo, "c").out.strip())
    git(tf_server_repo, "worktree", "lock", str(wt))
    r = claude.remove(wt, wt, check=False)
    assert r.rc == 1 and "locked" in r.err and wt.is_dir() and ls(tf_server_repo)["c"]["status"] == "ready"
    git(tf_server_repo, "worktree", "unlock", str(wt))
    (wt / "scratch.txt").write_text("not committed\n")
    r = claude.remove(wt, wt, check=False)
    assert r.rc == 1 and "uncommitted changes" in r.err and (wt / "scratch.txt").read_text() == "not committed\n"
    (wt / "scratch.txt").unlink()
    claude.remove(wt, wt, check=True)  # clean, unlocked, Claude's own: removed
    assert not wt.exists() and "c" not in ls(tf_server_repo)


def test_finding_30_a_branch_named_root_makes_no_second_root(tf_server_repo: Path) -> None:
    run_tf(tf_server_repo, "install")
    wt = tf_server_repo.parent / f"{tf_server_repo.name}-root"
    cp = git(tf_server_repo, "worktree", "add", "-q", "-b", "root", str(wt))
    assert "root workspace's name" in cp.stderr and "branch -m root root-work" in cp.stderr
    rows = json.loads(run_tf(tf_server_repo, "ls", "--json").out)
    assert [r["name"] for r in rows].count("root") == 1
    assert "unprovisioned.treefork.invalid" in db_url(wt) or "invalid" in db_url(wt)  # fails loudly, never main's
    assert db_url(wt) != db_url(tf_server_repo)
    git(wt, "branch", "-m", "root", "root-work")
    run_tf(wt, "sync")
    assert ls(tf_server_repo)["root-work"]["status"] == "ready" and can_connect(db_url(wt))


def test_finding_20_worktreeinclude_never_copies_through_a_committed_symlink(
    tf_server_repo: Path, tmp_path: Path
) -> None:
    """origin/HEAD commits `config -> <outside>`; the user's ignored config/local.yml must not land there."""
    outside = tmp_path / "victim-outside"
    outside.mkdir()
    (tf_server_repo / "config").mkdir()
    (tf_server_repo / "config" / "local.yml").write_text("db_password: hunter2\n")
    (tf_server_repo / ".git" / "info" / "exclude").write_text("config/local.yml\n")
    (tf_server_repo / ".worktreeinclude").write_text("config/local.yml\n")
    git(tf_server_repo, "add", ".worktreeinclude")
    git(tf_server_repo, "commit", "-q", "-m", "wi")
    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", str(tf_server_repo), str(attacker))
    git(attacker, "rm", "-q", "--cached", "-r", "--ignore-unmatch", "config")
    (attacker / "config").symlink_to(outside)
    git(attacker, "add", "config")
    git(attacker, "commit", "-q", "-m", "refactor config")
    git(tf_server_repo, "remote", "add", "origin", str(attacker))
    git(tf_server_repo, "fetch", "-q", "origin")
    git(tf_server_repo, "remote", "set-head", "origin", "main")
    # Claude's `fresh` base: its worktree's code comes from origin/HEAD, where the link is committed
    (tf_server_repo / ".claude").mkdir(exist_ok=True)
    (tf_server_repo / ".claude" / "settings.json").write_text('{"worktree": {"baseRef": "fresh"}}\n')
    run_tf(tf_server_repo, "install", "--claude")
    r = claude.create(tf_server_repo, "w1")
    wt = Path(r.out.strip())
    assert (wt / "config").is_symlink() and list(outside.iterdir()) == []  # nothing written outside
    assert "config" in r.err and "symlink" in r.err
    assert can_connect(db_url(wt))


def test_finding_20_worktreeinclude_copies_keep_the_files_mode(tf_server_repo: Path) -> None:
    (tf_server_repo / "secret.yml").write_text("k: v\n")
    (tf_server_repo / "secret.yml").chmod(0o600)
    (tf_server_repo / ".git" / "info" / "exclude").write_text("secret.yml\n")
    (tf_server_repo / ".worktreeinclude").write_text("secret.yml\n")
    run_tf(tf_server_repo, "install", "--claude")
    wt = Path(claude.create(tf_server_repo, "m").out.strip())
    assert (wt / "secret.yml").read_text() == "k: v\n" and (wt / "secret.yml").stat().st_mode & 0o777 == 0o600


def test_finding_32_symlink_directories_never_leave_the_worktree(tf_server_repo: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil-target"
    depth = len(tf_server_repo.relative_to("/").parts) + 3
    escape = "/".join([".."] * depth) + str(evil)
    (tf_server_repo / "shared").mkdir()
    settings = tf_server_repo / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"worktree": {"symlinkDirectories": [escape, "shared"], "baseRef": "head"}}))
    git(tf_server_repo, "add", ".")
    git(tf_server_repo, "commit", "-q", "-m", "settings")
    run_tf(tf_server_repo, "install", "--claude")
    r = claude.create(tf_server_repo, "s")
    wt = Path(r.out.strip())
    assert not evil.exists() and not evil.parent.joinpath("evil-target").is_symlink()
    assert "leads out of the worktree" in r.err
    assert (wt / "shared").is_symlink()  # the honest entry is still linked


def test_finding_32_a_committed_claude_symlink_gets_no_settings_written_through_it(
    tf_server_repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside-claude"
    outside.mkdir()
    run_tf(tf_server_repo, "install", "--claude")
    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", str(tf_server_repo), str(attacker))
    (attacker / ".claude").symlink_to(outside)
    git(attacker, "switch", "-q", "-c", "evilc")
    git(attacker, "add", ".claude")
    git(attacker, "commit", "-q", "-m", "evil")
    git(tf_server_repo, "fetch", "-q", str(attacker), "evilc:evilc")
    assert (tf_server_repo / ".claude" / "settings.local.json").is_file()
    r = run_tf(tf_server_repo, "new", "ec", "--branch", "evilc")
    wt = tf_server_repo.parent / f"{tf_server_repo.name}.worktrees" / "ec"
    assert (wt / ".claude").is_symlink() and list(outside.iterdir()) == []
    assert "symlink" in r.err


def test_finding_23_nested_path_is_refused_and_rm_never_wipes_an_inner_worktree(tf_server_repo: Path) -> None:
    outer = Path(json.loads(run_tf(tf_server_repo, "new", "outer", "--json").out)["path"])
    r = run_tf(tf_server_repo, "new", "inner", "--path", str(outer / "inner"), check=False)
    assert r.rc == 1 and "lies inside the worktree" in r.err and "inner" not in ls(tf_server_repo)
    assert not (outer / "inner").exists()
    # one that git made there itself: rm outer refuses, even with --force, and names it
    git(tf_server_repo, "worktree", "add", "-q", "-b", "gitinner", str(outer / "gitinner"))
    (outer / "gitinner" / "work.txt").write_text("precious\n")
    r = run_tf(tf_server_repo, "rm", "outer", "--force", check=False)
    assert r.rc != 0 and "gitinner" in r.err and "would delete its files" in r.err
    assert (outer / "gitinner" / "work.txt").read_text() == "precious\n" and ls(tf_server_repo)["outer"][
        "status"
    ] == "ready"


def test_finding_37_sync_says_ready_only_of_a_database_that_answers(tf_server_repo: Path, pg_server) -> None:
    from treefork.backends.local.libpq import SQL, Ident

    wt = Path(json.loads(run_tf(tf_server_repo, "new", "y", "--json").out)["path"])
    dbname = db_url(wt).rsplit("/", 1)[1].split("?")[0]
    with pg_server.admin() as conn:
        conn.execute(SQL.of("DROP DATABASE {} WITH (FORCE)", Ident(dbname)))
    r = run_tf(tf_server_repo, "sync", "y", check=False)
    assert r.rc == 1 and "is ready:" not in r.err and "does not log in" in r.err and "treefork reset y" in r.err
    assert run_tf(wt, "sync", "--quiet").rc == 0  # the agents' session hook stays cheap and silent


def test_finding_37_merge_of_a_workspace_being_removed_names_rm(tf_server_repo: Path) -> None:
    from testing.repo import registry_file

    run_tf(tf_server_repo, "new", "f5")
    data = json.loads(registry_file(tf_server_repo).read_text())
    data["workspaces"]["f5"]["status"] = "removing"  # what a merge killed during its removal leaves
    registry_file(tf_server_repo).write_text(json.dumps(data))
    r = run_tf(tf_server_repo, "merge", "f5", check=False)
    assert r.rc == 1 and "treefork rm f5" in r.err and "treefork new" not in r.err


def test_finding_38_a_worktree_path_with_a_newline_gets_a_clear_error(tf_server_repo: Path) -> None:
    weird = tf_server_repo.parent / "nl2\nx"
    git(tf_server_repo, "worktree", "add", "-q", "-b", "nlb", str(weird))
    for args in (("sync",), ("ls",), ("url", "root")):
        r = run_tf(weird, *args, check=False)
        assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r.err
        assert "control character" in r.err and "not found" not in r.err and "git worktree move" in r.err


def test_finding_37_sync_is_not_ready_while_a_squatter_holds_the_port(tf_repo: Path) -> None:
    import socket

    from testing.server import cluster_of

    run_tf(tf_repo, "new", "a")
    port = cluster_of(tf_repo, "a")["port"]
    run_tf(tf_repo, "server", "stop")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        r = run_tf(tf_repo, "sync", "a", check=False)
    assert r.rc == 1 and "is ready" not in r.err and str(port) in r.err
