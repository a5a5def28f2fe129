"""The tests' own caches (red-team round 3, finding 44): code the tests run comes only from a directory of this
user's that nobody else can write to, and a half-finished install is never trusted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testing import caches


def test_finding_44_a_cache_others_can_write_to_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "sharedtmp"
    shared.mkdir()
    shared.chmod(0o1777)  # /tmp-like: anyone could have planted node_modules/.bin/claude here
    monkeypatch.setenv("TREEFORK_TEST_CACHE", str(shared))
    with pytest.raises(caches.UnsafeCache, match="can be written by others"):
        caches.entry("agent-clis")


def test_finding_44_a_symlinked_cache_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setenv("TREEFORK_TEST_CACHE", str(tmp_path / "link"))
    with pytest.raises(caches.UnsafeCache, match="not a plain directory"):
        caches.root()


def test_the_default_cache_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREEFORK_TEST_CACHE", str(tmp_path / "c"))
    path = caches.entry("x")
    assert os.stat(path).st_mode & 0o077 == 0 and os.stat(path.parent).st_mode & 0o077 == 0


def test_an_unfinished_install_is_redone_and_a_finished_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREEFORK_TEST_CACHE", str(tmp_path / "c"))
    prefix = caches.entry("pkgs") / "p"
    prefix.mkdir()
    (prefix / "half-written").write_text("a killed install left this")
    calls: list[str] = []

    def install(into: Path) -> str:
        calls.append(sorted(p.name for p in into.iterdir()).__repr__())
        (into / "bin").write_text("ok")
        return ""

    assert caches.once(prefix, ["p@1"], install) == ""
    assert caches.once(prefix, ["p@1"], install) == ""  # finished: not again
    assert calls == ["[]"]  # the half-written directory was removed before installing
    assert caches.once(prefix, ["p@2"], install) == "" and len(calls) == 2  # another version: installed anew
    assert caches.once(prefix, ["p@3"], lambda into: "npm error") == "npm error"
    assert not (prefix / caches.DONE).exists()  # a failed install is not marked finished
