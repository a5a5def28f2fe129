"""treefork's exit codes, the one table (docs/cli.md shows it): an error is never the same code as a finding."""

from __future__ import annotations

OK = 0
ERROR = 1  # something stopped the command; the one-line message says how to fix it
USAGE = 2  # the arguments were wrong (click's own code for usage errors)
BUG = 3  # an unexpected error: a traceback is in the crash log
FOUND = 4  # the command worked and found what it reports: `diff` a schema change, `doctor` a failing check
PARTIAL = 5  # a command over several names did some and not others (`rm A B`); each one's result is reported
INTERRUPTED = 130  # ^C (128 + SIGINT), after putting back what the command had changed

TABLE = [
    (OK, "success"),
    (ERROR, "an error; the one-line message says how to fix it, and nothing was left half-done"),
    (USAGE, "wrong arguments (see `treefork COMMAND --help`)"),
    (BUG, "an unexpected error: a bug, with details in the crash log"),
    (FOUND, "`diff`: a schema difference; `doctor`: a check failed"),
    (PARTIAL, "`rm` with several names: some were removed and some not (each one's result is printed)"),
    (INTERRUPTED, "interrupted (^C); what the command had changed was put back"),
]
