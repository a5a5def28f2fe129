"""`treefork new` against the strict fake: only what neon-openapi.yaml guarantees (no `connection_uris` in
the create response, operations listed oldest first, 423 to a read that meets a running operation).
Counted in the fake's log: one POST, the polls, and the role's password asked for beside them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Run, db_url, run_tf
from neon_fake import PROJECT, FakeNeon, neon_env


@pytest.fixture
def strict_neon() -> Iterator[FakeNeon]:
    fake = FakeNeon(strict=True).start()
    yield fake
    fake.stop()


def _tf(fake: FakeNeon, cwd: Path, *args: str) -> Run:
    return run_tf(cwd, *args, env=neon_env(fake))


def _kinds(fake: FakeNeon, since: int) -> Counter[str]:
    """The requests since `since`, by kind: an operation by id and a role's password are one kind each."""
    kinds: Counter[str] = Counter()
    for method, path in fake.log[since:]:
        rest = path.removeprefix(f"/projects/{PROJECT}")
        if rest.startswith("/operations/"):
            rest = "/operations/{id}"
        elif rest.endswith("/reveal_password"):
            rest = "reveal_password"
        elif rest.startswith("/branches/"):
            rest = "/branches/{id}/" + rest.rsplit("/", 1)[-1]
        kinds[f"{method} {rest}"] += 1
    return kinds


def _new(fake: FakeNeon, repo: Path, name: str) -> tuple[Path, Counter[str]]:
    before = len(fake.log)
    worktree = Path(_tf(fake, repo, "new", name).out.strip().splitlines()[-1])
    return worktree, _kinds(fake, before)


def test_new_takes_its_connection_from_the_create_response_and_one_password(repo: Path, strict_neon: FakeNeon) -> None:
    _tf(strict_neon, repo, "init", "--backend", "neon", "--project-id", PROJECT)
    strict_neon.op_polls = 1  # done at the first poll: the password asked beside it may still meet it running
    worktree, kinds = _new(strict_neon, repo, "a")
    bid = strict_neon.branch_names(PROJECT)["a"]
    password, endpoint = strict_neon.projects[PROJECT].passwords[bid], strict_neon.projects[PROJECT].endpoints[bid]
    assert db_url(worktree) == (
        f"postgresql://neondb_owner:{password}@{endpoint['id']}-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require"
    )
    # no endpoints, databases or roles listing: the create response's required fields say where
    assert set(kinds) == {"POST /branches", "GET /operations", "GET reveal_password"}, kinds
    assert kinds["POST /branches"] == 1 and kinds["GET /operations"] == 1
    assert kinds["GET reveal_password"] <= 2  # beside the poll; once more if that one met the operation running


def test_operations_the_listing_does_not_show_are_polled_by_id(repo: Path, strict_neon: FakeNeon) -> None:
    _tf(strict_neon, repo, "init", "--backend", "neon", "--project-id", PROJECT)
    for _ in range(100):  # the oldest first fill the listing's page of 100: ours are not on it
        strict_neon._operation(strict_neon.projects[PROJECT], "br-old", "start_compute")
    strict_neon.op_polls = 2
    worktree, kinds = _new(strict_neon, repo, "a")
    assert db_url(worktree).startswith("postgresql://neondb_owner:npg_")
    assert kinds["GET /operations"] == 1  # asked once; then create_branch and start_compute by id, side by side
    assert kinds["GET /operations/{id}"] == 4  # two rounds of two
    assert kinds["POST /branches"] == 1 and kinds["GET reveal_password"] <= 3


def test_the_default_fake_still_answers_with_connection_uris(repo: Path) -> None:
    """The generous fake (as Neon answers a create with an endpoint, CONTRACTS A): no password request."""
    fake = FakeNeon().start()
    try:
        _tf(fake, repo, "init", "--backend", "neon", "--project-id", PROJECT)
        fake.op_polls = 1
        worktree, kinds = _new(fake, repo, "a")
    finally:
        fake.stop()
    assert kinds == Counter({"POST /branches": 1, "GET /operations": 1})
    assert fake.projects[PROJECT].passwords[fake.branch_names(PROJECT)["a"]] in db_url(worktree)
