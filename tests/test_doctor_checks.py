"""`treefork doctor` checks what a user cannot see: Neon CLI's own git hook fighting treefork's, and env file
URLs that no longer open their database."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import db_url, run_tf
from testing.cli import ls, new


def _checks(repo: Path) -> dict[str, dict]:
    r = run_tf(repo, "doctor", "--json", check=False)
    return {c["name"]: {**c, "rc": r.rc} for c in json.loads(r.out)["checks"]}


def test_doctor_flags_neon_clis_git_sync_hook_and_install_explains_it(tf_server_repo: Path) -> None:
    assert _checks(tf_server_repo)["neon git-sync hook"]["level"] == "ok"
    hook = tf_server_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\n# neon:git-sync\nneon git sync\n")
    hook.chmod(0o755)
    check = _checks(tf_server_repo)["neon git-sync hook"]
    assert check["level"] == "fail" and check["rc"] == 4 and "rewrites .env" in check["message"]
    r = run_tf(tf_server_repo, "install")
    assert "neon:git-sync" in r.err  # chained as .legacy, and still explained


def test_doctor_says_which_env_file_url_does_not_connect(tf_server_repo: Path) -> None:
    wt = new(tf_server_repo, "w")
    assert _checks(tf_server_repo)["connections"]["level"] == "ok"
    env = wt / ".env"
    env.write_text(env.read_text().replace(db_url(wt), db_url(wt).replace("@localhost", "x@localhost")))
    check = _checks(tf_server_repo)["connections"]
    assert check["level"] == "fail" and check["message"].startswith("env file URLs that do not connect: w (")
    assert check["hint"] == "treefork sync NAME (says why), then treefork reset NAME to make its database again"


def _ls_states(repo: Path) -> dict[str, str]:
    return {name: row["server_state"] for name, row in ls(repo).items()}


def test_doctor_starts_nothing_and_fix_starts_what_is_stopped(tf_repo: Path) -> None:
    """Doctor only looks (it used to start every stopped database to check its URL); --fix carries it out."""
    new(tf_repo, "s")
    run_tf(tf_repo, "server", "stop")
    checks = _checks(tf_repo)
    assert checks["stopped databases"]["level"] == "warn" and checks["stopped databases"]["data"] == ["root", "s"]
    assert checks["stopped databases"]["rc"] == 0  # a stopped database is not a failure: it starts on demand
    assert _ls_states(tf_repo) == {"root": "stopped", "s": "stopped"}
    r = run_tf(tf_repo, "doctor", "--fix", "--json", check=False)
    report = json.loads(r.out)
    assert report["fixed"] == ["stopped databases: treefork server start"], report
    assert _ls_states(tf_repo) == {"root": "running", "s": "running"}
    assert "stopped databases" not in {c["name"] for c in report["checks"]}
    assert next(c for c in report["checks"] if c["name"] == "connections")["message"] == "1 env file URL(s) connect"


def test_doctor_checks_main_whatever_the_spelling_of_its_url(tf_server_repo: Path) -> None:
    """The main worktree's URL in the app's own spelling (postgres://, localhost, parameters) is still checked."""
    env = tf_server_repo / ".env"
    assert _checks(tf_server_repo)["connections"]["message"] == "0 env file URL(s) connect"  # main keeps its own
    url = run_tf(tf_server_repo, "url", "root").out.strip()
    respelled = (
        url.replace("postgresql://", "postgres://").replace("@127.0.0.1", "@localhost") + "?application_name=web"
    )
    env.write_text(env.read_text().replace(db_url(tf_server_repo), respelled))
    assert _checks(tf_server_repo)["connections"]["message"] == "1 env file URL(s) connect"
    other = respelled.replace("?application_name", "_other?application_name")
    env.write_text(env.read_text().replace(respelled, other))
    check = _checks(tf_server_repo)["connections"]
    assert check["level"] == "ok" and check["message"] == "0 env file URL(s) connect"  # another database: its own


def test_doctor_warns_only_about_agents_used_here(tf_server_repo: Path) -> None:
    checks = _checks(tf_server_repo)
    assert checks["agent gemini"]["level"] == "ok" and "not used here" in checks["agent gemini"]["message"]
    (tf_server_repo / ".gemini").mkdir()
    assert _checks(tf_server_repo)["agent gemini"]["level"] == "warn"
