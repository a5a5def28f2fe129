"""The one funnel for subprocesses. Argument lists only, never a shell string."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypedDict

from treefork.errors import FatalError, ProcError


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    rc: int
    out: str
    err: str


@dataclass(frozen=True)
class RunAs:
    """An unprivileged OS user to run a command as (used when treefork runs as root)."""

    uid: int
    gid: int


def run(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    run_as: RunAs | None = None,
    timeout: float | None = None,
    hint: str | None = None,
) -> Result:
    """Run a command, capture its output, raise ProcError on failure when check is set."""
    try:
        cp = subprocess.run(
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            **_identity(run_as),
        )
    except FileNotFoundError:
        raise _not_found(args[0], cwd, hint=f"install {os.path.basename(args[0])} or put it on PATH") from None
    except subprocess.TimeoutExpired:
        raise FatalError(f"`{' '.join(args[:3])}` did not finish within {timeout:.0f}s") from None
    result = Result(tuple(args), cp.returncode, cp.stdout, cp.stderr)
    if check and cp.returncode != 0:
        raise ProcError(result.args, result.rc, result.out, result.err, hint=hint)
    return result


def run_visible(*args: str, cwd: str | os.PathLike[str], env: Mapping[str, str]) -> int:
    """Run a user's command (a setup step) with its output shown on stderr. Returns the exit code."""
    try:
        return subprocess.run(
            list(args), cwd=cwd, env=dict(env), stdout=sys.stderr, stderr=sys.stderr, stdin=subprocess.DEVNULL
        ).returncode
    except FileNotFoundError:
        return 127


FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def run_attached(*args: str, cwd: str | os.PathLike[str], env: Mapping[str, str]) -> int:
    """Run a user's command on the caller's own terminal (stdin, stdout, stderr): `treefork run`, a
    migration, `tmux attach`. Returns its exit code (-N when signal N ended it).

    ^C reaches the command and treefork alike (one process group); a signal sent to treefork alone (SIGTERM
    from a supervisor, SIGHUP) is passed on to the command, which decides when to end, and treefork waits."""
    try:
        child = subprocess.Popen(list(args), cwd=cwd, env=dict(env))
    except FileNotFoundError:
        raise _not_found(args[0], cwd, hint="check the command, or put it on PATH") from None
    with _forwarding_signals(child):
        try:
            return child.wait()
        except BaseException:  # ^C: the command got it too; a moment to finish, then it goes with treefork
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.25)
            child.kill()
            child.wait()
            raise


@contextlib.contextmanager
def _forwarding_signals(child: subprocess.Popen[bytes]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    before = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def pipe(
    first: Sequence[str],
    second: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    second_env: Mapping[str, str] | None = None,
    through: Callable[[IO[bytes], IO[bytes]], None] | None = None,
) -> None:
    """Run `first | second`, raising ProcError if either fails. second_env, if given, is the second's own
    environment (e.g. each side's password, which never goes on a command line). through, if given, copies
    first's output to second's input (a filter), in a thread of this process."""
    p1 = subprocess.Popen(
        list(first),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=dict(env) if env else None,
    )
    env2 = second_env if second_env is not None else env
    assert p1.stdout is not None
    p2 = subprocess.Popen(
        list(second),
        stdin=p1.stdout if through is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env2) if env2 else None,
    )
    copier = None if through is None else threading.Thread(target=_copy, args=(through, p1.stdout, p2.stdin))
    if copier is not None:
        copier.start()
    else:
        p1.stdout.close()
    out2, err2 = _communicate(p2, input_by_thread=copier is not None)
    if copier is not None:
        copier.join()
    _, err1 = p1.communicate()
    if p1.returncode != 0 and not (p1.returncode == -signal.SIGPIPE and p2.returncode != 0):  # the second quit first
        raise ProcError(tuple(first), p1.returncode, "", err1.decode(errors="replace"))
    if p2.returncode != 0:
        raise ProcError(tuple(second), p2.returncode, out2.decode(errors="replace"), err2.decode(errors="replace"))


def _copy(through: Callable[[IO[bytes], IO[bytes]], None], source: IO[bytes], sink: IO[bytes] | None) -> None:
    assert sink is not None
    try:
        through(source, sink)
    except BrokenPipeError:
        pass  # the second stopped reading: its exit code says why
    finally:
        source.close()
        with contextlib.suppress(BrokenPipeError):
            sink.close()


def _communicate(child: subprocess.Popen[bytes], *, input_by_thread: bool) -> tuple[bytes, bytes]:
    if not input_by_thread:
        return child.communicate()
    assert child.stdout is not None and child.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(child.stderr.read() if child.stderr else b""))
    reader.start()
    out = child.stdout.read()
    reader.join()
    child.wait()
    return out, errors[0] if errors else b""


def spawn_detached(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    run_as: RunAs | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-lived process in its own session, its output discarded (a follow-up hook, a short-lived
    `opencode serve`). The caller may signal its process group through the returned handle."""
    return subprocess.Popen(
        list(args),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(env) if env is not None else None,
        **_identity(run_as),
    )


def converse(*args: str, cwd: str | os.PathLike[str]) -> subprocess.Popen[str]:
    """Start a process to talk to over its stdin and stdout (a JSON-RPC server such as `codex app-server`)."""
    return subprocess.Popen(
        list(args), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


class _Identity(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _identity(run_as: RunAs | None) -> _Identity:
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def _not_found(program: str, cwd: str | os.PathLike[str] | None, *, hint: str) -> FatalError:
    """What a FileNotFoundError from starting a program means: the program is missing, or the directory it was
    to run in is gone (a worktree removed under the command)."""
    where = Path(cwd) if cwd is not None else None
    if where is not None and not where.is_dir():
        return FatalError(
            f"{where} no longer exists, so `{program}` cannot run there",
            hint="cd into the repository's main worktree and retry",
        )
    return FatalError(f"`{program}` was not found", hint=hint)
