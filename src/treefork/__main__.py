"""`python -m treefork` and the `treefork` command.

^C is handled before anything else is imported, with modules the interpreter has already loaded (importing
even `signal` takes long enough to be interrupted): until treefork's error boundary takes over, ^C exits 130
with one line, never a KeyboardInterrupt traceback. The boundary puts this handler back when it is done.
"""

import _signal  # type: ignore[import-not-found]  # the C module: already loaded, unlike signal
import os


def _interrupted(_signum: int, _frame: object) -> None:
    try:
        os.write(2, b"treefork: error: interrupted\n")
    except OSError:
        pass
    os._exit(130)


_signal.signal(_signal.SIGINT, _interrupted)


def main() -> None:
    from treefork.cli import console_main

    console_main()


if __name__ == "__main__":
    main()
