"""What every command needs: the repo, its registry, its config, and (lazily) its backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treefork import config as config_mod
from treefork import output
from treefork.backends import open_backend
from treefork.backends.base import Backend, BackendContext
from treefork.config import Config
from treefork.git import Repo
from treefork.state import Registry, State, Workspace


@dataclass
class Context:
    repo: Repo
    registry: Registry
    config: Config
    _backend: Backend | None = field(default=None, repr=False)

    @classmethod
    def open(cls, cwd: Path | None = None) -> Context:
        return cls.of(Repo.discover(cwd))

    @classmethod
    def of(cls, repo: Repo) -> Context:
        return cls(repo=repo, registry=Registry(repo.common_dir), config=config_mod.load(repo.main_root))

    def state(self) -> State:
        return self.registry.read()

    def backend(self, state: State | None = None) -> Backend:
        if self._backend is None:
            state = state or self.state()
            state.expect_initialized()
            assert state.backend and state.repo_id
            self._backend = open_backend(state.backend, self.backend_context(state))
        return self._backend

    def backend_context(self, state: State) -> BackendContext:
        assert state.repo_id
        return backend_context(
            self.repo, self.config, self.registry, repo_id=state.repo_id, settings=state.backend_settings
        )


def backend_context(
    repo: Repo, config: Config, registry: Registry, *, repo_id: str, settings: dict[str, Any]
) -> BackendContext:
    """What a backend gets of the repository and its registry: the secrets, its own settings, a workspace's record."""

    def change_settings(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        with registry.transaction() as st:
            change(st.backend_settings)
            return dict(st.backend_settings)

    def workspace_or_none(name: str) -> Workspace | None:
        return registry.read().workspaces.get(name)

    return BackendContext(
        repo_id=repo_id,
        repo_name=repo.name,
        main_root=repo.main_root,
        common_dir=repo.common_dir,
        config=config,
        settings=settings,
        progress=output.info,
        secret=registry.secret,
        change_settings=change_settings,
        workspace_or_none=workspace_or_none,
    )
