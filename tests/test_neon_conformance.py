"""The fake Neon API answers the real neonctl 5.0.1 as Neon does (CONTRACTS B): if it fools neonctl,
it is a faithful enough stand-in for treefork's own client."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from neon_fake import PROJECT, FakeNeon
from testing import caches

pytest_plugins = ["conftest_neon"]
pytestmark = pytest.mark.long  # node starts neonctl: half a second a command


def neonctl_bin() -> Path:
    """neonctl@5.0.1 installed once into this user's test cache (tests run with a temporary HOME)."""
    prefix = caches.entry("neonctl-5.0.1")
    problem = caches.npm_install(prefix, ["neonctl@5.0.1"], timeout=300)
    binary = prefix / "node_modules" / ".bin" / "neonctl"
    if problem or not binary.exists():
        pytest.skip(f"npm install neonctl@5.0.1 failed (no network?): {problem.splitlines()[-1:]}")
    return binary


def neonctl(fake: FakeNeon, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(neonctl_bin()),
        "--api-host",
        fake.url,
        "--no-analytics",
        "--api-key",
        fake.api_key,
        "--config-dir",
        str(tmp_path / "neonconfig"),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_neonctl_round_trip(fake_neon: FakeNeon, tmp_path: Path) -> None:
    created = neonctl(fake_neon, tmp_path, "branches", "create", "--name", "x", "--project-id", PROJECT, "-o", "json")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    default_id = fake_neon.branch_by_name(PROJECT, "main")["id"]
    assert data["branch"]["name"] == "x" and data["branch"]["parent_id"] == default_id
    assert data["endpoints"][0]["type"] == "read_write"
    assert data["connection_uris"][0]["connection_parameters"]["role"] == "neondb_owner"
    bid = data["branch"]["id"]

    got = neonctl(fake_neon, tmp_path, "branches", "get", "x", "--project-id", PROJECT, "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == bid

    conn = neonctl(fake_neon, tmp_path, "connection-string", "x", "--pooled", "--project-id", PROJECT)
    assert conn.returncode == 0, conn.stderr
    ep = fake_neon.projects[PROJECT].endpoints[bid]["id"]
    password = fake_neon.projects[PROJECT].passwords[bid]
    assert conn.stdout.strip().startswith(f"postgresql://neondb_owner:{password}@{ep}-pooler.")
    assert "/neondb?sslmode=require" in conn.stdout

    dup = neonctl(fake_neon, tmp_path, "branches", "create", "--name", "x", "--project-id", PROJECT, "-o", "json")
    assert dup.returncode == 1 and "branch already exists" in dup.stderr

    deleted = neonctl(fake_neon, tmp_path, "branches", "delete", "x", "--project-id", PROJECT, "-o", "json")
    assert deleted.returncode == 0, deleted.stderr
    assert fake_neon.branch_names(PROJECT) == {}
    assert ("DELETE", f"/projects/{PROJECT}/branches/{bid}") in fake_neon.log


def test_neonctl_sees_auth_errors_and_default_branch_refusal(fake_neon: FakeNeon, tmp_path: Path) -> None:
    bad = subprocess.run(
        [
            str(neonctl_bin()),
            "--api-host",
            fake_neon.url,
            "--no-analytics",
            "--api-key",
            "wrong",
            "--config-dir",
            str(tmp_path / "c"),
            "branches",
            "list",
            "--project-id",
            PROJECT,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and "rejected the API key" in bad.stderr
    refused = neonctl(fake_neon, tmp_path, "branches", "delete", "main", "--project-id", PROJECT)
    assert refused.returncode == 1 and "default branch" in refused.stderr
