"""Hostile input: names, env files, registry damage, broken git, a taken port, a full disk.

Each case ends in a clear one-line error and a non-zero exit, or is handled correctly; either way no file
or database is damaged."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values
from dotenv.parser import parse_stream

from conftest import ENV_SAMPLE, git, make_repo, run_tf
from testing.checks import assert_consistent, assert_empty
from testing.cli import assert_clear_error, ls_json
from testing.repo import git_worktrees, registry_file
from testing.server import db_branch_of, marked_databases, root_cluster, unmarked_databases

pytestmark = pytest.mark.stress


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """One initialised repo for the many cheap cases (each case leaves it as it found it)."""
    root = make_repo(tmp_path_factory.mktemp("hostile") / "app")
    run_tf(root, "init", "--no-import")
    return root


def _untouched_fast(repo: Path, main_env: bytes) -> None:
    """What `gc --dry-run` would say for an empty registry, checked in-process (cheap, per case)."""
    assert (repo / ".env").read_bytes() == main_env
    assert json.loads(registry_file(repo).read_text())["workspaces"] == {}
    assert git_worktrees(repo) == []
    assert marked_databases(repo) == [] and unmarked_databases(repo) == []


def _undamaged(repo: Path, main_env: bytes) -> None:
    assert (repo / ".env").read_bytes() == main_env
    json.loads(registry_file(repo).read_text())
    gc = json.loads(run_tf(repo, "gc", "--dry-run", "--json").out)
    assert gc["actions"] == [], gc
    assert unmarked_databases(repo) == []


REJECTED_NAMES = [
    "$(touch x)",
    "`touch x`",
    "a;touch x",
    "a'b",
    'a"b',
    "a b",
    "a\nb",
    "x" * 250,
    "..",
    "a/../b",
    "a//b",
    ".hidden",
    "x.lock",
    "a/.b",
    "a/b.lock",
    "@",
    "a@{1}",
    "a\\b",
    "a|b",
    "a&b",
    "a>b",
    "a<b",
    "a*b",
    "a?b",
    "a[b]",
    "a~b",
    "a^b",
    "a:b",
    "/abs",
    "trail/",
    "end.",
    "a\tb",
    "a\u200bb",
    "a\u00a0b",
    "a\x7fb",
    "a\rb",
    "root",
    "a!b",
    "a{b}",
    "a#b",
    "a%b",
    "a=b",
    "a,b",
]
DASH_NAMES = ["-rf", "--force", "-"]
ACCEPTED_NAMES = ["ünïcödé", "日本語-ws", "rocket-🚀", "a@b", "UPPER_case.1", "deep/er/name", "y" * 200]


def _no_x_anywhere(repo: Path) -> None:
    for where in (repo.parent, Path.cwd(), Path(os.environ["HOME"])):
        hits = (
            [p for p in where.rglob("x") if p.is_file()]
            if where != Path.cwd()
            else ([where / "x"] if (where / "x").exists() else [])
        )
        assert not hits, f"an injected command ran: {hits}"


@pytest.mark.parametrize("name", REJECTED_NAMES, ids=lambda n: repr(n)[:40])
def test_hostile_name_rejected(shared: Path, name: str) -> None:
    env_before = (shared / ".env").read_bytes()
    r = run_tf(shared, "new", name, check=False)
    line = assert_clear_error(r)
    assert "\n" not in line
    _no_x_anywhere(shared)
    _untouched_fast(shared, env_before)


@pytest.mark.parametrize("name", DASH_NAMES)
def test_leading_dash_names(shared: Path, name: str) -> None:
    env_before = (shared / ".env").read_bytes()
    assert_clear_error(run_tf(shared, "new", name, check=False))  # click sees an option (or a bare '-')
    assert_clear_error(run_tf(shared, "new", "--", name, check=False), contains="'-'")
    _untouched_fast(shared, env_before)


@pytest.mark.parametrize("branch", ["$(touch x)", "a b", "-x", "..", "ok;rm -rf ~"])
def test_hostile_branch_option_rejected(shared: Path, branch: str) -> None:
    env_before = (shared / ".env").read_bytes()
    assert_clear_error(run_tf(shared, "new", "fine", "--branch", branch, check=False))
    _no_x_anywhere(shared)
    _untouched_fast(shared, env_before)


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_unusual_but_valid_names_work(shared: Path, name: str) -> None:
    env_before = (shared / ".env").read_bytes()
    run_tf(shared, "new", name)
    rows = assert_consistent(shared, env_before)
    assert [r["name"] for r in rows] == [name]
    assert len(rows[0]["db_branch"].encode()) <= 63
    run_tf(shared, "rm", name)
    assert_empty(shared)
    _undamaged(shared, env_before)


def test_names_that_slug_alike_get_distinct_databases(shared: Path) -> None:
    env_before = (shared / ".env").read_bytes()
    names = ["feature/auth", "feature-auth", "feature_auth", "Feature-Auth"]
    for n in names:
        run_tf(shared, "new", n)
    rows = assert_consistent(shared, env_before)
    assert {r["name"] for r in rows} == set(names)
    assert len({r["db_branch"] for r in rows}) == len(names)
    assert len({Path(r["path"]).resolve() for r in rows}) == len(names)
    urls = {run_tf(shared, "url", n).out.strip() for n in names}
    assert len(urls) == len(names)
    run_tf(shared, "rm", *names)
    assert_empty(shared)
    _undamaged(shared, env_before)


def test_gc_collects_odd_names_whose_worktrees_are_gone_and_then_finds_nothing(tf_repo: Path) -> None:
    """Every accepted odd name, in a repository of this test's own: half removed by `rm`, half by git behind
    treefork's back; gc collects exactly the second half, then finds nothing. (It once checked the module's
    shared repository "after all" the other cases, which only their order made true: run alone, or first on
    an xdist worker, it checked an untouched repository.)"""
    env_before = (tf_repo / ".env").read_bytes()
    names = [*ACCEPTED_NAMES, "feature/auth", "feature-auth", "feature_auth", "Feature-Auth"]
    for name in names:
        run_tf(tf_repo, "new", name)
    rows = {r["name"]: r for r in assert_consistent(tf_repo, env_before)}
    removed, behind = names[::2], names[1::2]
    run_tf(tf_repo, "rm", *removed)
    for name in behind:
        git(tf_repo, "worktree", "remove", "--force", rows[name]["path"])
    planned = json.loads(run_tf(tf_repo, "gc", "--dry-run", "--json").out)["actions"]
    assert sorted((a["name"], a["db_branch"]) for a in planned) == sorted((n, rows[n]["db_branch"]) for n in behind)
    run_tf(tf_repo, "gc")
    assert_empty(tf_repo)
    _undamaged(tf_repo, env_before)


# ---- env files --------------------------------------------------------------------------------

ENV_CASES = {
    "bom": "\ufeffA=1\nDATABASE_URL=postgres://u:p@h/parentdb\n",
    "crlf": ENV_SAMPLE,
    "export": "export A=1\nexport DATABASE_URL=postgres://u:p@h/parentdb\n",
    "quoted_hash_eq": 'A="x#y=z"\nB=\'p#q=r\'  # c\nDATABASE_URL="postgres://u:p@h/parentdb?x=1#frag"\n',
    "multiline_value": 'CERT="-----BEGIN-----\nline2=still\n-----END-----"\nDATABASE_URL=postgres://u:p@h/parentdb\nZ=1\n',
    "multiline_url": 'DATABASE_URL="postgres://u:p@h/parentdb\nsecondline"\nA=1\n',
    "duplicate_url": (
        "DATABASE_URL=postgres://u:p@h/parentdb\nA=1\nexport DATABASE_URL='postgres://u:p@h/parentdb2'\n"
        'DATABASE_URL = "postgres://u:p@h/parentdb3"\n'
    ),
    "no_trailing_newline": "A=1\nDATABASE_URL=postgres://u:p@h/parentdb",
    "no_url": "A=1\n",
    "empty": "",
    "secret_twice": "NEON_API_KEY=k1\nexport NEON_API_KEY='k2'\nA=1\n",
    "url_in_comment": "# DATABASE_URL=postgres://u:p@h/parentdb\nA=1\n",
    "crlf_no_newline_dup": "DATABASE_URL=postgres://u:p@h/parentdb\r\nB=2\r\nDATABASE_URL=postgres://u:p@h/parentdb2",
}


@pytest.mark.parametrize("case", list(ENV_CASES))
def test_env_file_shapes(shared: Path, case: str) -> None:
    original = (shared / ".env").read_bytes()
    text = ENV_CASES[case]
    (shared / ".env").write_bytes(text.encode("utf-8"))
    try:
        run_tf(shared, "new", "envcase")
        row = ls_json(shared)[0]
        wt, db = Path(row["path"]), row["db_branch"]
        env = wt / ".env"
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
        out = env.read_text(encoding="utf-8")
        if text.startswith("\ufeff"):
            assert out.startswith("\ufeff")
        bindings = [b for b in parse_stream(io.StringIO(out.removeprefix("\ufeff"))) if b.key == "DATABASE_URL"]
        assert bindings, out
        for b in bindings:  # every duplicate, not only the last one python-dotenv keeps
            assert b.value and db_branch_of(b.value) == db, f"{case}: {b.value!r}\n{out}"
        assert "parentdb" not in "".join(b.original.string for b in bindings)
        got = dotenv_values(env)
        want = dotenv_values(stream=io.StringIO(text.removeprefix("\ufeff")))
        assert db_branch_of(got["DATABASE_URL"]) == db
        assert "NEON_API_KEY" not in got
        for key, value in want.items():
            if key not in ("DATABASE_URL", "NEON_API_KEY"):
                assert got.get(key) == value, f"{case}: {key} changed: {got.get(key)!r} != {value!r}"
        # the shell agrees (agents `source .env`) when the file is shell-compatible
        if case in ("export", "no_url", "duplicate_url", "crlf_no_newline_dup", "no_trailing_newline"):
            sh = subprocess.run(
                ["bash", "-c", 'set -a; . ./.env >/dev/null 2>&1; printf %s "$DATABASE_URL"'],
                cwd=wt,
                capture_output=True,
                text=True,
            )
            assert db_branch_of(sh.stdout.replace("\r", "")) == db, sh
        assert not [p for p in wt.iterdir() if p.name.endswith(".tmp")]
        assert (shared / ".env").read_bytes() == text.encode("utf-8")
        run_tf(shared, "rm", "envcase")
        assert_empty(shared)
    finally:
        (shared / ".env").write_bytes(original)
        if ls_json(shared):
            run_tf(shared, "rm", "envcase", "--force", check=False)


def test_env_not_utf8_is_a_clear_error_and_leaves_nothing(shared: Path) -> None:
    original = (shared / ".env").read_bytes()
    bad = b"A=\xff\xfe\nDATABASE_URL=postgres://u:p@h/parentdb\n"
    (shared / ".env").write_bytes(bad)
    try:
        assert_clear_error(run_tf(shared, "new", "latin1", check=False), contains="UTF-8")
        assert (shared / ".env").read_bytes() == bad
        assert_empty(shared)
    finally:
        (shared / ".env").write_bytes(original)
    _undamaged(shared, original)


def test_env_mode_000(shared: Path) -> None:
    """As root, mode 000 does not stop reads (CAP_DAC_OVERRIDE): what is testable is that the workspace
    env is still 0600 and the main file's bytes and mode are untouched. The unprivileged case (a clear
    'cannot read ... check its permissions' error) needs a non-root treefork with its own server; see report."""
    original = (shared / ".env").read_bytes()
    os.chmod(shared / ".env", 0o000)
    try:
        r = run_tf(shared, "new", "locked", check=False)
        if os.geteuid() == 0:
            assert r.rc == 0, r.err
            wt = Path(ls_json(shared)[0]["path"])
            assert stat.S_IMODE((wt / ".env").stat().st_mode) == 0o600
            assert stat.S_IMODE((shared / ".env").stat().st_mode) == 0o000
            run_tf(shared, "rm", "locked")
        else:
            assert_clear_error(r, contains="permission")
        assert_empty(shared)
    finally:
        os.chmod(shared / ".env", 0o644)
    _undamaged(shared, original)


# ---- registry damage ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong_version", "not_an_object"])
def test_damaged_registry_is_a_clear_error_naming_the_file_and_fix(shared: Path, damage: str) -> None:
    reg = registry_file(shared)
    good = reg.read_bytes()
    bad = {
        "garbage": b"{not json",
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "wrong_version": json.dumps({**json.loads(good), "version": 99}).encode(),
        "not_an_object": b"[1, 2]",
    }[damage]
    reg.write_bytes(bad)
    try:
        for args in (("ls",), ("new", "w"), ("gc", "--dry-run"), ("rm", "w")):
            r = run_tf(shared, *args, check=False)
            line = assert_clear_error(r)
            assert str(reg) in line, line
            assert "hint:" in line
            # every command the hint suggests must exist with those options
            for suggested in re.findall(r"`treefork ([^`]+)`", line):
                words = suggested.split()
                h = run_tf(shared, *words, "--help", check=False)
                assert h.rc == 0, f"the hint suggests `treefork {suggested}`, which does not exist: {h.err}"
            assert reg.read_bytes() == bad  # never overwritten by a guess
    finally:
        reg.write_bytes(good)
    _undamaged(shared, (shared / ".env").read_bytes())


# ---- git ---------------------------------------------------------------------------------------------


def test_missing_git(tf_repo: Path) -> None:
    r = run_tf(tf_repo, "ls", env={"PATH": str(Path(sys.executable).parent)}, check=False)
    assert_clear_error(r, contains="git")


def test_very_old_git(tf_repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\necho 'git version 2.20.0'\n")
    (fake / "git").chmod(0o755)
    r = run_tf(tf_repo, "new", "w", env={"PATH": f"{fake}:{os.environ['PATH']}"}, check=False)
    assert_clear_error(r, contains="2.20")
    assert ls_json(tf_repo) == []


def test_repo_without_commits(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run_tf(root, "init")  # the root database needs no commit...
    assert_clear_error(run_tf(root, "new", "w", check=False), contains="no commits")  # ...a worktree does
    assert ls_json(root) == [] and git_worktrees(root) == [] and marked_databases(root) == []


def test_bare_repo(tmp_path: Path) -> None:
    root = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(root))
    for args in (("init",), ("new", "w"), ("ls",)):
        assert_clear_error(run_tf(root, *args, check=False), contains="bare")


def test_not_a_repo(tmp_path: Path) -> None:
    assert_clear_error(run_tf(tmp_path, "new", "w", check=False), contains="not inside a git repository")


def test_path_that_already_exists(tf_repo: Path, main_env: bytes, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine\n")
    assert_clear_error(run_tf(tf_repo, "new", "w", "--path", str(taken), check=False), contains="already exists")
    assert (taken / "keep.txt").read_text() == "mine\n" and sorted(p.name for p in taken.iterdir()) == ["keep.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_clear_error(run_tf(tf_repo, "new", "w2", "--path", str(afile), check=False), contains="already exists")
    assert afile.read_text() == "x"
    assert_empty(tf_repo)
    assert (tf_repo / ".env").read_bytes() == main_env


# ---- the server's port is taken ---------------------------------------------------------------------


def test_a_taken_port_is_an_error_naming_the_program_and_never_a_silent_move(tf_repo: Path, main_env: bytes) -> None:
    root = root_cluster(tf_repo)
    run_tf(tf_repo, "server", "stop")
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's TIME_WAITs
        squatter.bind(("127.0.0.1", root["port"]))
        squatter.listen(1)
        r = run_tf(tf_repo, "new", "portless", check=False)
        assert_clear_error(r, contains=f"port {root['port']}")
        assert f"pid {os.getpid()}" in r.err
        assert root_cluster(tf_repo)["port"] == root["port"], "the root keeps its port: every env file names it"
        assert_empty(tf_repo)
    finally:
        squatter.close()
    run_tf(tf_repo, "new", "portless")
    assert_consistent(tf_repo, main_env)
    run_tf(tf_repo, "rm", "portless")
    assert_empty(tf_repo)


# ---- the disk fills up while the env file is written ------------------------------------------------


def _mount_tmpfs(where: Path) -> bool:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def test_disk_full_while_writing_env(tf_repo: Path, main_env: bytes, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        wt = mnt / "wt"
        run_tf(tf_repo, "new", "tiny", "--path", str(wt))
        env = wt / ".env"
        # the agent pointed the URL elsewhere, so the re-run must rewrite the file...
        env.write_bytes(env.read_bytes().replace(b"DATABASE_URL=", b"DATABASE_URL=postgresql://elsewhere/x#", 1))
        before = env.read_bytes()
        readme = (wt / "README.md").read_bytes()
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)  # ...and the disk is full
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        r = run_tf(tf_repo, "new", "tiny", check=False)
        assert_clear_error(r, contains="cannot write")
        assert env.read_bytes() == before, "the old env file was damaged"
        assert (wt / "README.md").read_bytes() == readme
        assert not [p.name for p in wt.iterdir() if p.name.endswith(".tmp")]
        # nothing orphaned, and the workspace (with its database) survived the failed re-run
        rows = ls_json(tf_repo)
        assert [r["name"] for r in rows] == ["tiny"], rows
        assert [w.resolve() for w in git_worktrees(tf_repo)] == [wt.resolve()]
        assert [d for d, _ in marked_databases(tf_repo)] == [rows[0]["db_branch"]]
        filler.unlink()
        run_tf(tf_repo, "new", "tiny")
        assert_consistent(tf_repo, main_env)
        run_tf(tf_repo, "rm", "tiny")
        assert_empty(tf_repo)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
