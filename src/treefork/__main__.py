"""`python -m treefork` and the `treefork` command.

^C is already quiet here: the package's `__init__` set its handler before this module was imported (see
there). It is set again in case the package was imported otherwise first. Until treefork's error boundary
takes over, ^C exits 130 with one line; the boundary puts this handler back when it is done.
"""

import _signal  # type: ignore[import-not-found]  # the C module: already loaded, unlike signal

from treefork import quiet_interrupt

_signal.signal(_signal.SIGINT, quiet_interrupt)


def main() -> None:
    from treefork.cli import console_main

    console_main()


if __name__ == "__main__":
    main()
