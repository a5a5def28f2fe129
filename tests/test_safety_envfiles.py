"""Every worktree's env file is right, or treefork fails loudly: no variable keeps pointing at the parent's
database, no password is written where git would commit it, nothing is read or written through a symlink."""

from __future__ import annotations

from pathlib import Path

import psycopg
from dotenv import dotenv_values

from conftest import ENV_SAMPLE, git, make_repo, run_tf
from testing.cli import assert_one_line_error, ls

PARENT = "postgresql://me:pw@localhost:5432/app_dev"
MAIN_ENV = (
    f"DATABASE_URL={PARENT}\n"
    f"DIRECT_URL={PARENT}\n"
    f"POSTGRES_URL_NON_POOLING={PARENT}?sslmode=disable\n"
    f"DATABASE_URL_UNPOOLED={PARENT}\n"
    f"REPORTING_URL=postgres://reporter:other@LOCALHOST:5432/app_dev\n"
    "ANALYTICS_URL=postgresql://me:pw@warehouse.example:5432/analytics\n"
    "PGHOST=localhost\nPGPORT=5432\nPGDATABASE=app_dev\nPGUSER=me\nPGPASSWORD=pw\n"
    "POSTGRES_HOST=localhost\nPOSTGRES_PORT=5432\nPOSTGRES_DB=app_dev\nPOSTGRES_USER=me\nPOSTGRES_PASSWORD=pw\n"
    "APP_MODE=dev\n"
)


def test_every_database_variable_points_at_the_workspace(tf_server_repo: Path) -> None:
    (tf_server_repo / ".env").write_text(MAIN_ENV)
    out = run_tf(tf_server_repo, "new", "parts", "--json").out
    import json

    env = dotenv_values(Path(json.loads(out)["path"]) / ".env")
    url = env["DATABASE_URL"]
    assert url and url != PARENT
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE mark (v text)")
        conn.execute("INSERT INTO mark VALUES ('workspace')")
    urls = ["DIRECT_URL", "POSTGRES_URL_NON_POOLING", "DATABASE_URL_UNPOOLED", "REPORTING_URL"]
    for var in urls:
        with psycopg.connect(env[var], connect_timeout=5) as conn:
            assert conn.execute("SELECT v FROM mark").fetchone() == ("workspace",), var
    for prefix, db in (("PG", "PGDATABASE"), ("POSTGRES_", "POSTGRES_DB")):
        parts = {
            "host": env[f"{prefix}HOST"],
            "port": env[f"{prefix}PORT"],
            "dbname": env[db],
            "user": env[f"{prefix}USER"],
            "password": env[f"{prefix}PASSWORD"],
        }
        with psycopg.connect(**parts, connect_timeout=5) as conn:
            assert conn.execute("SELECT v FROM mark").fetchone() == ("workspace",), prefix
    assert env["ANALYTICS_URL"] == "postgresql://me:pw@warehouse.example:5432/analytics"  # another database
    assert env["APP_MODE"] == "dev"
    assert "app_dev" not in (Path(json.loads(out)["path"]) / ".env").read_text()


def test_unprovisioned_env_leaves_no_variable_pointing_at_the_parent() -> None:
    from treefork import config as config_mod
    from treefork.envfile import rewrite, values
    from treefork.workspace.envbuild import url_updates

    cfg = config_mod.load(Path("/nonexistent"))
    out = values(rewrite(MAIN_ENV, url_updates(cfg, None, MAIN_ENV)))
    assert not any(v and ("app_dev" in v or v == "localhost" or v == "pw") for v in out.values()), out


def _branch_with(repo: Path, branch: str, files: dict[str, str | Path], *, force_add: bool = False) -> None:
    git(repo, "switch", "-q", "-c", branch)
    for name, content in files.items():
        target = repo / name
        if target.is_symlink() or target.exists():
            target.unlink()
        if isinstance(content, Path):
            target.symlink_to(content)
        else:
            target.write_text(content)
        git(repo, "add", *(["-f"] if force_add else []), name)
    git(repo, "commit", "-q", "-m", f"{branch} files")
    git(repo, "switch", "-q", "main")


def test_tracked_env_file_never_gets_the_password(tf_server_repo: Path) -> None:
    main_env = (tf_server_repo / ".env").read_bytes()
    _branch_with(tf_server_repo, "tracked", {".env": "APP_MODE=committed\n"}, force_add=True)
    (tf_server_repo / ".env").write_bytes(main_env)  # switching branches took the untracked file away
    r = run_tf(tf_server_repo, "new", "tracked", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "tracked by git", "git rm --cached")
    assert "tracked" not in ls(tf_server_repo)
    assert git(tf_server_repo, "show", "tracked:.env").stdout == "APP_MODE=committed\n"


def test_env_file_unignored_by_negation_never_gets_the_password(tf_server_repo: Path) -> None:
    _branch_with(tf_server_repo, "negated", {".gitignore": ".env\n!.env\n"})
    r = run_tf(tf_server_repo, "new", "negated", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "!.env")
    assert "negated" not in ls(tf_server_repo)


def test_symlinked_env_file_in_a_branch_is_never_read_or_written(tf_server_repo: Path, tmp_path: Path) -> None:
    victim = tmp_path / "shadow"
    victim.write_text("root:secret-hash\n")
    main_env = (tf_server_repo / ".env").read_bytes()
    _branch_with(tf_server_repo, "linked", {".env": victim}, force_add=True)
    (tf_server_repo / ".env").write_bytes(main_env)
    r = run_tf(tf_server_repo, "new", "linked", check=False)
    assert r.rc != 0
    assert_one_line_error(r.err, "symlink")
    assert victim.read_text() == "root:secret-hash\n"
    assert "linked" not in ls(tf_server_repo)


def test_symlinked_main_env_file_is_never_replaced_or_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app")
    shared = tmp_path / "shared.env"
    shared.write_bytes(ENV_SAMPLE.encode())
    (repo / ".env").unlink()
    (repo / ".env").symlink_to(shared)
    r = run_tf(repo, "init", "--overwrite-env", check=False)
    assert r.rc != 0 and "symlink" in r.err and "Traceback" not in r.err
    assert (repo / ".env").is_symlink() and shared.read_bytes() == ENV_SAMPLE.encode()


def test_copy_files_cannot_copy_the_parents_env_file_over_the_workspaces(tf_server_repo: Path) -> None:
    (tf_server_repo / "treefork.toml").write_text('copy_files = ["./.env"]\n')
    r = run_tf(tf_server_repo, "new", "copied", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "copy_files", "parent's database")
    assert "copied" not in ls(tf_server_repo)
