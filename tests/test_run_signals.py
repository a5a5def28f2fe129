"""`treefork run NAME -- CMD` passes on the signals sent to it (issue "Real applications, as they are":
SIGTERM to `treefork run` left its child running)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from testing.cli import popen_tf
from testing.waits import wait_until

CHILD = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def bye(signum, frame):
    (out / "got").write_text(signal.Signals(signum).name)
    sys.exit(7)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGHUP, bye)
(out / "pid").write_text(str(os.getpid()))
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_treefork_run_reaches_its_command(tf_server_repo: Path, tmp_path: Path, sig: int) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    # in a session of its own: the signal goes to treefork alone, as a supervisor's would
    runner = popen_tf(tf_server_repo, "run", "root", "--", sys.executable, str(script), str(tmp_path), session=True)
    try:
        wait_until((tmp_path / "pid").exists, "the command starting", process=runner)
        child = int((tmp_path / "pid").read_text())
        runner.send_signal(sig)
        assert runner.wait(timeout=30) == 7  # the command's own exit code
        assert (tmp_path / "got").read_text() == signal.Signals(sig).name
        assert not _alive(child)
    finally:
        if runner.poll() is None:
            runner.kill()
        if (tmp_path / "pid").exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
