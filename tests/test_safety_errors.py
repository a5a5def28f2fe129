"""Clear errors, never a traceback: read-only or full places, an HTML page instead of the Neon API, closed
std streams, ^C at startup."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import git, run_tf
from testing.cli import assert_one_line_error, ls
from testing.loopback import LoopbackHTTP

needs_mounts = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare for a private mount"
)


def run_tf_mounted(cwd: Path, setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """treefork in a private mount namespace, after `setup` (sh) made a place read-only or full. As root,
    permission bits do not stop a write, so a read-only mount stands in for them."""
    script = f'{setup}\nexec "$0" -m treefork "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-ec", script, sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@needs_mounts
def test_read_only_registry_is_a_clear_error(tf_server_repo: Path) -> None:
    d = tf_server_repo / ".git" / "treefork"
    r = run_tf_mounted(tf_server_repo, f"mount --bind '{d}' '{d}'; mount -o remount,bind,ro '{d}'", "new", "ro")
    assert r.returncode == 1, r.stderr
    assert_one_line_error(r.stderr, "cannot write", str(d))
    assert "ro" not in ls(tf_server_repo)


@needs_mounts
def test_read_only_info_exclude_is_a_clear_error(tf_server_repo: Path) -> None:
    (tf_server_repo / ".gitignore").write_text("")  # so treefork has to add the env file to info/exclude
    git(tf_server_repo, "commit", "-qam", "ignore nothing")
    f = tf_server_repo / ".git" / "info" / "exclude"
    r = run_tf_mounted(tf_server_repo, f"mount --bind '{f}' '{f}'; mount -o remount,bind,ro '{f}'", "new", "noexcl")
    assert r.returncode == 1, r.stderr
    assert_one_line_error(r.stderr, "cannot write", "exclude")
    assert "noexcl" not in ls(tf_server_repo)


@needs_mounts
def test_full_disk_is_a_clear_error(tf_server_repo: Path, tmp_path: Path) -> None:
    d = tf_server_repo / ".git" / "treefork"
    keep = tmp_path / "registry-copy"
    setup = (
        f"cp -a '{d}' '{keep}'; mount -t tmpfs -o size=64k tmpfs '{d}'; cp -a '{keep}/.' '{d}/'; "
        f"dd if=/dev/zero of='{d}/fill' bs=4k 2>/dev/null || true"
    )
    r = run_tf_mounted(tf_server_repo, setup, "new", "full")
    assert r.returncode == 1, r.stderr
    assert_one_line_error(r.stderr, "no space left", "df -h")
    assert "full" not in ls(tf_server_repo)


def test_bug_details_reach_stderr_when_the_log_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from treefork import error_handler as eh

    monkeypatch.setattr(eh, "crash_log_path", lambda: Path("/dev/full"))  # every write: ENOSPC
    with pytest.raises(SystemExit) as exit_info:
        with eh.error_handler():
            raise ZeroDivisionError("a bug")
    assert exit_info.value.code == eh.EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "traceback above" in err


def test_os_errors_the_user_can_fix_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from treefork import error_handler as eh

    with pytest.raises(SystemExit) as exit_info:
        with eh.error_handler():
            with open("/dev/full", "w") as f:
                f.write("x")
                f.flush()
    assert exit_info.value.code == 1
    assert_one_line_error(capsys.readouterr().err, "no space left", "df -h")


class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    def _page(self) -> None:
        body = b"<html><body>Please log in to the proxy</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PATCH = _page

    def log_message(self, *args: object) -> None:
        pass


def test_neon_api_answering_html_is_a_clear_error(repo: Path) -> None:
    with LoopbackHTTP(_HtmlHandler) as server:
        env = {"NEON_API_HOST": server.url, "NEON_API_KEY": "napi_x"}
        r = run_tf(repo, "init", "--backend", "neon", "--project-id", "p-1", env=env, check=False)
    assert r.rc == 1, r.err
    assert_one_line_error(r.err, "text/html", "NEON_API_HOST")


def test_closed_stdout_is_a_clear_error_and_closed_stdin_is_harmless(tf_server_repo: Path) -> None:
    cmd = [sys.executable, "-m", "treefork", "ls"]
    closed_out = subprocess.run(
        ["sh", "-c", '"$@" >&-', "sh", *cmd], cwd=tf_server_repo, stderr=subprocess.PIPE, text=True, timeout=60
    )
    assert closed_out.returncode == 1
    assert_one_line_error(closed_out.stderr, "standard output is closed")
    closed_in = subprocess.run(["sh", "-c", '"$@" <&-', "sh", *cmd], cwd=tf_server_repo, capture_output=True, text=True)
    assert closed_in.returncode == 0 and "root" in closed_in.stdout and "Traceback" not in closed_in.stderr


class _HangHandler(http.server.BaseHTTPRequestHandler):
    """Accepts every request and never answers (until the test lets it go)."""

    seen: list[str] = []
    release = threading.Event()

    def _hang(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.release.wait(30)

    do_GET = do_POST = do_DELETE = do_PATCH = _hang

    def log_message(self, *args: object) -> None:
        pass


def test_finding_40_a_neon_api_that_never_answers_fails_at_once_with_a_clear_error(repo: Path) -> None:
    _HangHandler.seen.clear()
    _HangHandler.release.clear()
    with LoopbackHTTP(_HangHandler) as server:
        env = {"NEON_API_HOST": server.url, "NEON_API_KEY": "napi_x", "TREEFORK_NEON_TIMEOUT": "0.5"}
        try:
            r = run_tf(repo, "init", "--backend", "neon", "--project-id", "p-1", env=env, check=False)
        finally:
            _HangHandler.release.set()
    assert r.rc == 1, r.err
    assert_one_line_error(r.err, "did not answer within 0.5 s", "TREEFORK_NEON_TIMEOUT")
    assert len(_HangHandler.seen) == 1, _HangHandler.seen  # never asked again: it would hang as long each time
    assert (
        not (repo / ".git" / "treefork" / "registry.json").exists()
        or '"backend": null' in (repo / ".git" / "treefork" / "registry.json").read_text()
    )
