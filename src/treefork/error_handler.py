"""The one boundary where exceptions become messages and exit codes.

FatalError (the user can fix it) -> 1, ^C -> 130, a bug -> 3 with a traceback in the log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from treefork import output
from treefork.errors import FatalError
from treefork.redact import redact

EXIT_BUG = 3
EXIT_INTERRUPT = 130


def crash_log_path() -> Path:
    from treefork import paths

    return paths.treefork_home() / "treefork.log"


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    try:
        yield
    except FatalError as e:
        output.error(str(e))
        raise SystemExit(e.exit_code) from None
    except KeyboardInterrupt:
        output.error("interrupted")
        raise SystemExit(EXIT_INTERRUPT) from None
    except SystemExit:
        raise
    except BaseException as e:  # a bug: say where the details went
        log = _write_crash_log()
        output.error(f"unexpected {type(e).__name__}: {e} (a bug; details in {log}; please report it)")
        raise SystemExit(EXIT_BUG) from None


def _write_crash_log() -> str:
    text = redact(traceback.format_exc())
    try:
        path = crash_log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"--- treefork {' '.join(sys.argv[1:])}\n{text}\n")
        return str(path)
    except OSError:
        return "stderr (the log could not be written)"
