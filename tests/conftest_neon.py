"""The fake Neon API as a pytest fixture, plus a runner that points the real treefork CLI at it.

Register with `pytest_plugins = ["conftest_neon"]` in a neon test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Run, run_tf
from neon_fake import PROJECT, FakeNeon, neon_env


@pytest.fixture
def fake_neon() -> Iterator[FakeNeon]:
    fake = FakeNeon(project_ids=(PROJECT, "other-proj-654321")).start()
    yield fake
    fake.stop()


@pytest.fixture
def tf_neon(fake_neon: FakeNeon):
    """run_tf with the fake's env."""

    def run(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> Run:
        return run_tf(cwd, *args, env={**neon_env(fake_neon), **(env or {})}, check=check)

    return run


@pytest.fixture
def neon_repo(repo: Path, tf_neon) -> Path:
    tf_neon(repo, "init", "--backend", "neon", "--project-id", PROJECT)
    return repo
