"""The Backend Protocol's contract, run over every backend in treefork.backends.BACKENDS through one helper
(as pre-commit runs every language): the same steps, the same expectations, in-process.

Each backend comes with a harness that can put a marker into a branch and read it back: rows through the
branch's own URL on the local backend (real PostgreSQL), the branch's schema in the fake Neon (built from
Neon's OpenAPI spec) on Neon."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from neon_fake import PROJECT, FakeNeon, neon_env
from treefork import config as config_mod
from treefork.backends import BACKENDS, open_backend
from treefork.backends.base import Backend, BackendContext, CreateOptions, DbBranch
from treefork.context import backend_context
from treefork.errors import BackendError, FatalError
from treefork.git import Repo
from treefork.state import Registry


@dataclass
class Harness:
    backend: Backend
    write: Callable[[DbBranch, str], None]
    read: Callable[[DbBranch], str]
    resets: bool = True  # `reset` (a server the user runs refuses it, changing nothing)


def _context(repo: Path, settings: dict[str, object]) -> BackendContext:
    made = backend_context(
        Repo.discover(repo), config_mod.load(repo), Registry(repo / ".git"), repo_id="c0ffee", settings=settings
    )
    return dataclasses.replace(made, progress=lambda message: None)


def _marker(backend: Backend) -> tuple[Callable[[DbBranch, str], None], Callable[[DbBranch], str]]:
    """Rows through the branch's own URL."""

    def write(branch: DbBranch, text: str) -> None:
        with psycopg.connect(backend.connection(branch).url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS marker (v text)")
            conn.execute("TRUNCATE marker")
            conn.execute("INSERT INTO marker VALUES (%s)", (text,))

    def read(branch: DbBranch) -> str:
        with psycopg.connect(backend.connection(branch).url) as conn:
            row = conn.execute("SELECT v FROM marker").fetchone()
            return str(row[0]) if row else ""

    return write, read


def _local(repo: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    settings = {"layout": "clusters", "home": os.environ["TREEFORK_HOME"], "dbname": "app"}
    backend = open_backend("local", _context(repo, settings))
    yield Harness(backend, *_marker(backend))
    from treefork.backends.local.clusters import ClusterBackend

    assert isinstance(backend, ClusterBackend)
    backend.drop_throwaway_repo()


def _neon(repo: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    fake = FakeNeon(project_ids=(PROJECT,)).start()
    saved = dict(os.environ)
    os.environ.update(neon_env(fake))
    try:
        backend = open_backend("neon", _context(repo, {"project_id": PROJECT}))
        yield Harness(
            backend,
            lambda branch, text: fake.set_schema(PROJECT, branch.id, text),
            lambda branch: fake.schema(PROJECT, branch.id),
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        fake.stop()


def _server_url(repo: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The local backend on a server the user runs (`init --server-url`): the session's own PostgreSQL."""
    server = request.getfixturevalue("pg_server")
    Registry(repo / ".git").set_secret("admin_url", server.url())
    with server.dropping_what_is_made():
        backend = open_backend("local", _context(repo, {"external": True}))
        yield Harness(backend, *_marker(backend), resets=False)


HARNESSES = {"local": _local, "local --server-url": _server_url, "neon": _neon}


def test_every_backend_has_a_contract_harness() -> None:
    assert {name.split()[0] for name in HARNESSES} == set(BACKENDS)


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, repo: Path) -> Iterator[Harness]:
    yield from HARNESSES[request.param](repo, request)


@pytest.mark.waits  # Neon operations polled to the end
def test_the_backend_contract(harness: Harness) -> None:
    be, write, read = harness.backend, harness.write, harness.read

    root = be.create_root(import_url=None)
    assert be.create_root(import_url=None).id == root.id == be.root().id, "create_root is idempotent"
    write(root, "seed")

    a = be.create_branch("a", parent=root, options=CreateOptions())
    assert read(a) == "seed", "a branch starts as a copy of its parent"
    write(a, "a's work")
    assert read(root) == "seed", "and never writes into it"
    found = be.find_branch_or_none("a")
    assert found is not None and found.id == a.id
    assert be.find_branch_or_none("nobody") is None
    assert [b.id for b in be.list_branches()] == [a.id]
    url = be.connection(a).url
    assert url.startswith("postgres") and be.connection(a).url == url

    write(root, "seed v2")
    if harness.resets:
        be.reset_branch(a, source=root)
        assert read(a) == "seed v2" and be.connection(a).url == url, "reset keeps the URL, takes the source's data"
    else:
        with pytest.raises(FatalError, match="cannot reset"):
            be.reset_branch(a, source=root)
        assert read(a) == "a's work" and be.connection(a).url == url, "a refused reset changes nothing"
        write(a, "seed v2")
    assert be.schema_diff(a, base=root) == ""

    snap = be.snapshot(a, tag="t1")
    found = be.find_snapshot_or_none(a, tag="t1")
    assert found is not None and found.id == snap.id, "a merge finds its snapshot by its tag"
    write(a, "a half-applied migration")
    be.restore(a, snapshot=snap)
    assert read(a) == "seed v2" and be.connection(a).url == url
    assert [b.id for b in be.list_branches()] == [a.id], "restore drops the snapshot"
    assert be.find_snapshot_or_none(a, tag="t1") is None

    b = be.create_branch("b", parent=a, options=CreateOptions())
    assert read(b) == "seed v2", "stacked on a"
    assert sorted(x.id for x in be.list_branches()) == sorted([a.id, b.id])

    health = be.health()  # doctor's own checks: each a level it knows, none failing on a healthy repository
    assert all(h.level in ("ok", "warn") for h in health), health
    assert all(h.level == "ok" for h in health if h.name == "cluster settings"), health
    assert be.make_extensions().failed == [], "nothing listed, nothing to make"

    be.delete_branch(b)
    be.delete_branch(b)  # already gone is success
    assert be.find_branch_or_none("b") is None
    be.delete_branch(a)
    assert be.list_branches() == []
    with pytest.raises(BackendError):
        be.delete_branch(root)
    assert read(root) == "seed v2"
