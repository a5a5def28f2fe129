"""`treefork doctor` checks what a user cannot see: Neon CLI's own git hook fighting treefork's, and env file
URLs that no longer open their database."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import db_url, run_tf
from tf_helpers import new


def _checks(repo: Path) -> dict[str, dict]:
    r = run_tf(repo, "doctor", "--json", check=False)
    return {c["name"]: {**c, "rc": r.rc} for c in json.loads(r.out)["checks"]}


def test_doctor_flags_neon_clis_git_sync_hook_and_install_explains_it(tf_server_repo: Path) -> None:
    assert _checks(tf_server_repo)["neon git-sync hook"]["level"] == "ok"
    hook = tf_server_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\n# neon:git-sync\nneon git sync\n")
    hook.chmod(0o755)
    check = _checks(tf_server_repo)["neon git-sync hook"]
    assert check["level"] == "fail" and check["rc"] == 1 and "rewrites .env" in check["message"]
    r = run_tf(tf_server_repo, "install")
    assert "neon:git-sync" in r.err  # chained as .legacy, and still explained


def test_doctor_says_which_env_file_url_does_not_connect(tf_server_repo: Path) -> None:
    wt = new(tf_server_repo, "w")
    assert _checks(tf_server_repo)["connections"]["level"] == "ok"
    env = wt / ".env"
    env.write_text(env.read_text().replace(db_url(wt), db_url(wt).replace("@localhost", "x@localhost")))
    check = _checks(tf_server_repo)["connections"]
    assert check["level"] == "fail" and check["message"].startswith("env file URLs that do not connect: w (")
    assert check["hint"] == "treefork sync NAME"
