"""What every command needs: the repo, its registry, its config, and (lazily) its backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from treefork import config as config_mod
from treefork import output
from treefork.backends import open_backend
from treefork.backends.base import Backend, BackendContext
from treefork.config import Config
from treefork.git import Repo
from treefork.state import Registry, State


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
        return BackendContext(
            repo_id=state.repo_id,
            repo_name=self.repo.name,
            main_root=self.repo.main_root,
            config=self.config,
            registry=self.registry,
            settings=state.backend_settings,
            progress=output.info,
        )
