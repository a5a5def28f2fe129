"""`treefork ls` on an 80-column terminal (issue "Real applications, as they are": it cut `database` and
`ports` to the same prefix on every row while keeping columns that said the same on every row)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

from conftest import run_tf


def _ls_on_a_terminal(cwd: Path, columns: int) -> list[str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "treefork", "ls"], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    out = b""
    while select.select([master], [], [], 30)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: treefork ended
            break
        if not chunk:
            break
        out += chunk
    assert p.wait(timeout=30) == 0, out
    os.close(master)
    return [line for line in out.decode().replace("\r", "").splitlines() if line.strip()]


def test_ls_at_80_columns_drops_columns_before_cutting_a_value(tf_server_repo: Path) -> None:
    (tf_server_repo / "treefork.toml").write_text('ports = ["PORT", "VITE_PORT"]\n')
    names = ["feature-authentication", "billing-api-v2", "fix-login-redirect"]
    for name in names:
        run_tf(tf_server_repo, "new", name)
    rows = {r["name"]: r for r in __import__("json").loads(run_tf(tf_server_repo, "ls", "--json").out)}
    lines = _ls_on_a_terminal(tf_server_repo, 80)
    assert all(len(line) <= 80 for line in lines), lines
    header = lines[0]
    assert "name" in header and "database" in header and "tree" in header
    shared = os.path.commonprefix([r["db_branch"] for r in rows.values()])
    for name in names:
        line = next(line for line in lines if line.split()[0] == name)  # every name, whole
        # the database: whole, or without the beginning every row shares; never cut at its end
        assert rows[name]["db_branch"] in line or "…" + rows[name]["db_branch"][len(shared) :] in line, line
        assert not any(cell.strip().endswith("…") for cell in line.split("│")), line
    # columns that are the same on every workspace went before any that tell them apart
    assert "agent" not in header and "+/-" not in header
