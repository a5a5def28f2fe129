"""The one boundary where exceptions become messages and exit codes.

FatalError (the user can fix it) -> 1, ^C -> 130, a bug -> 3 with a traceback in the log (exitcodes.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from treefork import exitcodes, output
from treefork.errors import FatalError
from treefork.redact import redact

EXIT_FATAL = exitcodes.ERROR
EXIT_BUG = exitcodes.BUG
EXIT_INTERRUPT = exitcodes.INTERRUPTED


def crash_log_path() -> Path:
    from treefork import paths

    return paths.treefork_home() / "treefork.log"


# What the user can fix when the system refuses a file operation: a full disk, a read-only place.
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    outside = _raise_on_interrupt()
    try:
        yield
    except FatalError as e:
        output.error(str(e))
        raise SystemExit(e.exit_code) from None
    except KeyboardInterrupt as e:
        from treefork.interrupts import Stopped

        output.error(f"interrupted ({e})" if isinstance(e, Stopped) else "interrupted")
        raise SystemExit(128 + e.signum if isinstance(e, Stopped) else EXIT_INTERRUPT) from None
    except SystemExit:
        raise
    except OSError as e:
        if e.errno not in _DISK_FULL | _NOT_ALLOWED:
            _report_bug(e)
        output.error(str(os_error(e)))
        raise SystemExit(EXIT_FATAL) from None
    except BaseException as e:
        _report_bug(e)
    finally:
        _restore_interrupt_handler(outside)


def _raise_on_interrupt() -> object:
    """Inside the boundary ^C raises KeyboardInterrupt, so rollbacks run and the boundary reports it.
    Returns the handler it replaced (the entry point's quiet exit), to be put back on the way out."""
    import signal

    try:
        return signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _restore_interrupt_handler(handler: object) -> None:
    import signal

    if handler is not None:
        signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]


def os_error(e: OSError) -> FatalError:
    """A refused file operation as a message with the fix."""
    where = e.filename or "a file"
    place = Path(where).parent if e.filename else Path(".")
    if e.errno in _DISK_FULL:
        return FatalError(
            f"no space left to write {where}",
            hint=f"free some disk space there (df -h {place}), then retry; files treefork writes are replaced whole, never half-written",
        )
    return FatalError(
        f"cannot write {where}: {e.strerror}",
        hint=f"make it writable for you (ls -ld {place}; chmod u+w {where}), or run treefork as its owner",
    )


def _report_bug(e: BaseException) -> None:
    """A bug: say where the details went (stderr itself when the log cannot be written)."""
    log = _write_crash_log()
    if log is None:
        sys.stderr.write(redact(traceback.format_exc()))
        log = "the traceback above (the log could not be written)"
    output.error(f"unexpected {type(e).__name__}: {e} (a bug; details in {log}; please report it)")
    raise SystemExit(EXIT_BUG) from None


def _write_crash_log() -> str | None:
    text = redact(traceback.format_exc())
    try:
        path = crash_log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"--- treefork {' '.join(sys.argv[1:])}\n{text}\n")
        return str(path)
    except OSError:
        return None
