"""Round 3's finding 41: ^C in the first milliseconds of a treefork process printed a KeyboardInterrupt
traceback. ^C is sent at offsets of 0-60 ms (an input, not a measured time) after the start of
`python -P -m treefork url x`, of the console script, and of the agent hook script treefork writes.

treefork's package sets a quiet handler as its first statement (`treefork/__init__.py`), so no frame of
treefork's ever shows in a traceback. Before that statement the interpreter is still starting (its `site`,
`runpy`, the console script's own `import re`): no code of ours runs there. The launchers treefork writes
start Python with ^C ignored (`trap '' INT`), so a process they start never prints a traceback at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from treefork import selfcmd
from treefork.agents import launcher

OFFSETS_MS = range(0, 61, 2)


def interrupted_at(argv: list[str], offset_ms: int, cwd: Path, *, group: bool = False) -> tuple[int, str]:
    """argv started, ^C sent offset_ms later (to its process group, as a terminal does, with group)."""
    p = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=group
    )
    deadline = time.monotonic() + offset_ms / 1000
    while time.monotonic() < deadline:
        pass
    try:
        os.killpg(p.pid, signal.SIGINT) if group else os.kill(p.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def treeforks_frames(err: str) -> list[str]:
    """A traceback's frames in treefork's package (the console script is pip's, `/bin/treefork`)."""
    return [line for line in err.splitlines() if line.lstrip().startswith("File ") and "/treefork/" in line]


def in_interpreter_start_up(rc: int, err: str) -> bool:
    """^C before any code of treefork's ran: killed before Python set its handler (-2), or a traceback
    through the interpreter's own start-up (site, runpy, the console script's first import), rc 1 or -2."""
    return rc == -signal.SIGINT or ("Traceback" in err and rc in (1, -signal.SIGINT) and not treeforks_frames(err))


def test_finding_41_no_traceback_from_treeforks_code_at_any_moment_of_its_start(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("treefork")
    for argv in ([*selfcmd.argv("url", "x")], [str(script), "url", "x"]):
        for offset in OFFSETS_MS:
            rc, err = interrupted_at(argv, offset, tmp_path)
            assert not treeforks_frames(err), f"{argv[-3:]} at {offset} ms: {err}"
            if rc == 130:
                assert err.strip().splitlines()[-1:] == ["treefork: error: interrupted"], err
            else:
                assert in_interpreter_start_up(rc, err) or rc == 1 and "Traceback" not in err, (offset, rc, err)


def test_finding_41_the_quiet_handler_is_set_by_the_package_when_treefork_starts_as_a_program() -> None:
    """runpy imports the package before `__main__`, and the console script imports it first too: the
    package's first statement is the earliest code of treefork's. A plain import (a test, a tool) keeps its ^C."""
    probe = "import sys; sys.argv[:] = [{argv0!r}]; import signal, treefork; print(signal.getsignal(signal.SIGINT).__name__)"
    for argv0, handler in (
        ("-m", "quiet_interrupt"),
        ("/venv/bin/treefork", "quiet_interrupt"),
        ("-c", "default_int_handler"),
    ):
        out = subprocess.run(
            [sys.executable, "-P", "-c", probe.format(argv0=argv0)], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == handler, argv0


def test_finding_41_a_process_treeforks_launchers_start_never_prints_a_traceback(tmp_path: Path) -> None:
    """The agent hook script (what every agent's session start runs), ^C'd as a terminal does."""
    hook = tmp_path / "agent-hook"
    hook.write_text(launcher.text())
    hook.chmod(0o755)
    not_a_repo = tmp_path / "elsewhere"
    not_a_repo.mkdir()
    for offset in OFFSETS_MS:
        rc, err = interrupted_at([str(hook)], offset, not_a_repo, group=True)
        assert "Traceback" not in err, f"at {offset} ms: {err}"
        assert rc in (1, 130, -signal.SIGINT), (offset, rc, err)  # its own failure (no repository), or ^C
