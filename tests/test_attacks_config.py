"""Red-team round 3 (../shared/redteam/round3.md), configuration and env files: each test replays a
finding's attack on a real repository and checks it now fails with a one-line error and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import git, run_tf


def _config(repo: Path, text: str) -> None:
    (repo / "treefork.toml").write_text(text)
    git(repo, "add", "treefork.toml")
    git(repo, "commit", "-q", "-m", "config")


def _refused(repo: Path, *words: str) -> None:
    r = run_tf(repo, "new", "t", check=False)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1 and "a bug" not in r.err, r.err
    assert all(w in r.err for w in words), r.err
    registry = json.loads((repo / ".git" / "treefork" / "registry.json").read_text())
    assert "t" not in registry["workspaces"] and not (repo.parent / f"{repo.name}.worktrees" / "t").exists()


@pytest.mark.parametrize("name", [".git", ".GIT"])
def test_finding_28_env_file_git_is_refused(tf_server_repo: Path, name: str) -> None:
    _config(tf_server_repo, f'env_file = "{name}"\n')
    _refused(tf_server_repo, "env_file", "git's own")


def test_finding_33_env_file_with_a_nul_byte_is_refused(tf_server_repo: Path) -> None:
    _config(tf_server_repo, 'env_file = ".env\\u0000x"\n')
    _refused(tf_server_repo, "env_file must be a plain file name")


@pytest.mark.parametrize("var", ["DATABASE_URL", "PGPORT", "POSTGRES_PORT", "DIRECT_URL"])
def test_finding_33_a_database_variable_in_ports_is_refused(tf_server_repo: Path, var: str) -> None:
    _config(tf_server_repo, f'ports = ["PORT", "{var}"]\n')
    _refused(tf_server_repo, "ports lists", var)


def test_finding_33_the_url_var_in_ports_is_refused(tf_server_repo: Path) -> None:
    _config(tf_server_repo, 'url_var = "APP_DB"\nports = ["APP_DB"]\n')
    _refused(tf_server_repo, "ports lists", "APP_DB")


@pytest.mark.parametrize(
    ("key", "var"),
    [("url_var", "PATH"), ("url_var", "LD_PRELOAD"), ("direct_url_var", "PYTHONPATH"), ("ports", "HOME")],
)
def test_finding_33_a_process_variable_is_refused(tf_server_repo: Path, key: str, var: str) -> None:
    _config(tf_server_repo, f"{key} = {[var]!r}\n".replace("'", '"') if key == "ports" else f'{key} = "{var}"\n')
    _refused(tf_server_repo, key, var, "programs read for themselves")


def test_finding_19_two_inits_at_once_make_one_root_and_the_main_env_points_at_it(repo: Path) -> None:
    import os
    import subprocess
    import sys

    from conftest import db_url
    from testing.server import can_connect, cluster_records, root_cluster

    (repo / ".env").unlink()  # as in the report: no dev database, so init writes the main .env itself
    roots_before = sum(r["workspace"] == "<root>" for r in cluster_records())
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "treefork", "init", "--no-import"],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in runs]
    assert [rc for rc, _ in outcomes] == [0, 0], outcomes
    assert sum("already initialised" in err for _, err in outcomes) == 1, outcomes
    assert sum(r["workspace"] == "<root>" for r in cluster_records()) == roots_before + 1
    root = root_cluster(repo)
    main_url = db_url(repo)
    assert f":{root['port']}/" in main_url and can_connect(main_url)


def test_finding_41_a_line_dotenv_and_a_shell_read_differently_is_refused(tf_server_repo: Path) -> None:
    """R1-34: `OTHER=1 DATABASE_URL=…` is OTHER to python-dotenv, but DATABASE_URL too to `set -a; . .env`."""
    env = tf_server_repo / ".env"
    env.write_text(env.read_text() + "OTHER=1 DATABASE_URL=postgres://parent2/db\n")
    r = run_tf(tf_server_repo, "new", "t", check=False)
    assert r.rc == 1 and sum(line.startswith("treefork: error:") for line in r.err.splitlines()) == 1, r.err
    assert "Traceback" not in r.err and "OTHER" in r.err and "DATABASE_URL" in r.err and "a line of its own" in r.err
    assert "parent2" not in r.err and not (tf_server_repo.parent / f"{tf_server_repo.name}.worktrees" / "t").exists()


def test_finding_41_an_env_file_that_is_a_directory_gets_the_right_hint(repo: Path) -> None:
    """R1-33: not "chmod 600"."""
    env = repo / ".env"
    env.unlink()
    env.mkdir()
    r = run_tf(repo, "init", "--no-import", check=False)
    assert r.rc == 1 and "is a directory" in r.err and "chmod" not in r.err and "mv " in r.err, r.err


def test_finding_41_claude_hook_stdin_is_bounded_in_size_and_time() -> None:
    """R1-35: an incomplete object on a pipe left open, and a huge one, end with a clear error."""
    import os

    from treefork.errors import FatalError
    from treefork.hooks.claude import read_payload

    r, w = os.pipe()
    try:
        os.write(w, b'{"name": "hang')
        with pytest.raises(FatalError, match="no complete JSON object on stdin within 0.2 s"):
            read_payload(r, seconds=0.2)
    finally:
        os.close(r)
        os.close(w)
    r, w = os.pipe()
    try:
        os.write(w, b'{"name": "' + b"x" * 60000)
        with pytest.raises(FatalError, match="more than 50000 bytes"):
            read_payload(r, limit=50000, seconds=5)
    finally:
        os.close(r)
        os.close(w)
