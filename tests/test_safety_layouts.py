"""Repository layouts: a bare repository with linked worktrees is supported (the root workspace is the
worktree on its default branch); a submodule (whose git dir lives in the superproject's .git/modules) is
refused clearly, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import PgServer, db_url, git, make_repo, run_tf
from testing.cli import assert_one_line_error, gc_dry, ls, new


def bare_layout(tmp_path: Path) -> tuple[Path, Path]:
    """`git clone --bare x x.git; git -C x.git worktree add ../main main`, with the usual main .env."""
    origin = make_repo(tmp_path / "x")
    bare = tmp_path / "x.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(bare))
    main = tmp_path / "main"
    git(bare, "worktree", "add", "-q", str(main), "main")
    (main / ".env").write_bytes((origin / ".env").read_bytes())
    return bare, main


def test_bare_repository_with_worktrees_keeps_root_and_workspaces_in_worktrees(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """On the session's server: the layout, not how a branch is made, is the subject."""
    with pg_server.dropping_what_is_made():
        _bare_repository_with_worktrees(tmp_path, pg_server)


def _bare_repository_with_worktrees(tmp_path: Path, pg_server: PgServer) -> None:
    bare, main = bare_layout(tmp_path)
    run_tf(main, "init", "--server-url", pg_server.url(), "--overwrite-env")
    run_tf(main, "install")
    root_url = db_url(main)  # the root env file lives in the main worktree, not in x.git
    assert not (bare / ".env").exists()
    feat = new(main, "feat")
    assert feat.parent.parent == main.parent  # beside the main worktree, not under x.git
    assert not (tmp_path / "x.git.worktrees").exists()
    with psycopg.connect(db_url(feat), autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_feat (v text)")
        conn.execute("INSERT INTO only_in_feat VALUES ('feat')")
    with psycopg.connect(root_url) as conn:
        assert conn.execute("SELECT to_regclass('only_in_feat')").fetchone() == (None,)
    # a worktree git adds (the hook) is provisioned too, and the root worktree is not a workspace
    hooked = tmp_path / "hooked"
    git(bare, "worktree", "add", "-q", "-b", "hooked", str(hooked))
    with psycopg.connect(db_url(hooked)) as conn:
        assert conn.execute("SELECT to_regclass('only_in_feat')").fetchone() == (None,)
    rows = ls(main)
    assert set(rows) == {"root", "feat", "hooked"} and Path(rows["root"]["path"]) == main.resolve()
    assert gc_dry(main) == []
    out = json.loads(run_tf(main, "rm", "feat", "--force", "--json").out)
    assert out[0]["db_dropped"] and out[0]["worktree_removed"] and not feat.exists()


def test_bare_repository_dir_and_missing_root_worktree_are_refused_clearly(tmp_path: Path) -> None:
    bare, main = bare_layout(tmp_path)
    r = run_tf(bare, "init", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "bare repository", "worktree")
    git(main, "switch", "-q", "-c", "elsewhere")  # no worktree on the default branch any more
    r = run_tf(main, "init", check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, "default branch main", "worktree add")
    assert not (bare / "treefork").exists() and not (bare / ".env").exists()


def test_submodule_is_refused_clearly(tmp_path: Path) -> None:
    lib = make_repo(tmp_path / "lib")
    sup = make_repo(tmp_path / "super")
    git(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(sup, "commit", "-qm", "add lib")
    sub = sup / "lib"
    r = run_tf(sub, "init", check=False)
    assert r.rc == 1, r.err
    assert_one_line_error(r.err, "submodule", "superproject")
    assert not (sup / ".git" / "modules" / "lib" / "treefork").exists()
