"""scripts/venv, which the README's two commands start with: it makes a virtual environment with pip, also
where the venv module has no ensurepip (Debian or Ubuntu without python3-venv), or names the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.long  # pip installs pip

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "venv"

NO_ENSUREPIP = """#!/bin/sh
# {python} whose venv module has no ensurepip, as on Debian or Ubuntu without python3-venv
if [ "$1 $2" = "-m venv" ] && [ "$3" != "--without-pip" ]; then
  echo "The virtual environment was not created successfully because ensurepip is not available." >&2
  {python} -m venv --without-pip "$3"; exit 1
fi
{no_pip}
exec {python} "$@"
"""


def _fake_python(tmp_path: Path, *, pip: bool) -> Path:
    no_pip = "" if pip else 'if [ "$1 $2" = "-m pip" ]; then echo "No module named pip" >&2; exit 1; fi'
    fake = tmp_path / "python3"
    fake.write_text(NO_ENSUREPIP.format(python=sys.executable, no_pip=no_pip))
    fake.chmod(0o755)
    return fake


def _run(venv: Path, python: str) -> subprocess.CompletedProcess[str]:
    # PIP_COMPILE=false: the pip that bootstraps pip does not compile its modules (half a second of CPU, and
    # not what is tested here). ensurepip ignores PIP_* variables: the plain path still compiles them.
    env = {**os.environ, "TREEFORK_VENV": str(venv), "PYTHON": python, "PIP_COMPILE": "false"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


def _pip_works(venv: Path) -> bool:
    cp = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True)
    return cp.returncode == 0 and str(venv) in cp.stdout


def test_makes_a_venv_with_pip_once(tmp_path: Path) -> None:
    venv = tmp_path / "v"
    assert _run(venv, sys.executable).returncode == 0
    assert _pip_works(venv)
    marker = venv / "kept"
    marker.write_text("")
    assert _run(venv, sys.executable).returncode == 0
    assert marker.exists(), "a second run must keep the venv it made"


def test_without_ensurepip_pip_is_bootstrapped(tmp_path: Path) -> None:
    venv = tmp_path / "v"
    cp = _run(venv, str(_fake_python(tmp_path, pip=True)))
    assert cp.returncode == 0, cp.stderr
    assert "no ensurepip" in cp.stderr
    assert _pip_works(venv)


def test_without_ensurepip_or_pip_the_fix_is_named(tmp_path: Path) -> None:
    venv = tmp_path / "v"
    cp = _run(venv, str(_fake_python(tmp_path, pip=False)))
    assert cp.returncode == 1
    assert "hint: apt-get install python3-venv" in cp.stderr.splitlines()[-1]
    assert not venv.exists()
