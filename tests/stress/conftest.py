"""The stress suite's fixture; its helpers live in the testing package (tests/testing/)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def main_env(tf_repo: Path) -> bytes:
    return (tf_repo / ".env").read_bytes()
