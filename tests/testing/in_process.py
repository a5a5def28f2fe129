"""treefork's CLI run in the test's own process, as a subprocess would see it: the working directory, the
environment, and file descriptors 0, 1 and 2 (so the commands treefork starts write into the same capture)
are the run's own, and all of them are put back afterwards."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def run(cwd: Path, args: tuple[str, ...], *, env: dict[str, str], input: str | None) -> Any:
    from conftest import Run
    from treefork import cli

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, _stdin(input) as stdin:
        with _environment(env), _directory(cwd), _std_fds(stdin, out, err):
            rc = cli.main(list(args))
            _join_background_steps()
        return Run(rc, _text(out), _text(err))


def _text(f: IO[bytes]) -> str:
    """As `subprocess.run(text=True)` reads it: UTF-8, universal newlines."""
    f.seek(0)
    return f.read().decode().replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _stdin(text: str | None) -> Iterator[IO[bytes]]:
    if text is None:
        with open(os.devnull, "rb") as f:
            yield f
        return
    with tempfile.TemporaryFile() as f:
        f.write(text.encode())
        f.seek(0)
        yield f


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Only what changed is put back, not all of os.environ cleared and refilled (a putenv for each of its keys,
    on each of the loop's ~800 runs)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        now = dict(os.environ)
        for key in now.keys() - saved.keys():
            del os.environ[key]
        for key, value in saved.items():
            if now.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def _directory(cwd: Path) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved)


@contextlib.contextmanager
def _std_fds(stdin: IO[bytes], out: IO[bytes], err: IO[bytes]) -> Iterator[None]:
    saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    for f, fd in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(f.fileno(), fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 (closed below)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    try:
        yield
    finally:
        for stream in (sys.stdin, sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for fd, saved in enumerate(saved_fds):
            os.dup2(saved, fd)
            os.close(saved)


def _join_background_steps() -> None:
    """A command that failed may leave its background step running (a daemon thread, which `os._exit` ends
    in the real CLI); it must finish before the next command runs in this process."""
    for t in threading.enumerate():
        if t.name.startswith("treefork-") and t is not threading.current_thread():
            t.join(timeout=60)
