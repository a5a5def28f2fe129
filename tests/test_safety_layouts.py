"""Repository layouts treefork does not support are refused clearly, before anything is written: a bare
repository with linked worktrees, and a submodule (whose git dir lives in the superproject's .git/modules)."""

from __future__ import annotations

from pathlib import Path

from conftest import git, make_repo, run_tf
from tf_helpers import assert_one_line_error


def test_bare_repository_with_worktrees_is_refused_clearly(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "x")
    bare = tmp_path / "x.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(bare))
    main = tmp_path / "main"
    git(bare, "worktree", "add", "-q", str(main), "main")
    (main / ".env").write_text("DATABASE_URL=postgresql://me:pw@localhost:5432/app_dev\n")
    for cwd in (main, bare):
        r = run_tf(cwd, "init", check=False)
        assert r.rc == 1, r.err
        assert_one_line_error(r.err, "bare repository", "git clone")
    assert not (bare / "treefork").exists() and not (bare / ".env").exists()
    assert (main / ".env").read_text() == "DATABASE_URL=postgresql://me:pw@localhost:5432/app_dev\n"
    assert not (tmp_path / "x.git.worktrees").exists()


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
