"""treefork: a git worktree plus its own database branch, in one command.

The first statement that runs of treefork's, for `python -m treefork` (runpy imports the package before
`__main__`) and for the console script (`from treefork.__main__ import main`): ^C exits 130 with one line,
never a KeyboardInterrupt traceback, with modules the interpreter has already loaded (`_signal`, `os`, `sys`;
importing even `signal` takes long enough to be interrupted). Only when treefork is starting as a program:
a test or a tool that imports the package keeps its own ^C. Until here, what ^C does is the interpreter's
(its start-up, and the console script's own `import re`); the launchers treefork writes (git hooks, the agent
hook) start Python with ^C ignored, so their processes have no such window (tests/test_attacks_startup.py).
"""

import _signal  # type: ignore[import-not-found]  # the C module: already loaded, unlike signal
import os
import sys


def quiet_interrupt(_signum: int, _frame: object) -> None:
    """^C before treefork's error boundary takes over (and after it is done): one line, exit 130."""
    try:
        os.write(2, b"treefork: error: interrupted\n")
    except OSError:
        pass
    os._exit(130)


if sys.argv[:1] == ["-m"] or os.path.basename(sys.argv[0] if sys.argv else "") == "treefork":
    _signal.signal(_signal.SIGINT, quiet_interrupt)

__version__ = "0.1.0"
