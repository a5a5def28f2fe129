"""Where the Neon API key comes from, remembered so a 401 can say which source was wrong.

The chain: the NEON_API_KEY environment variable, then NEON_API_KEY in the main worktree's env file,
then neonctl's credentials file (`neonctl auth` writes `access_token` there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from treefork import envfile
from treefork.backends.neon.api import NeonKey
from treefork.errors import FatalError
from treefork.redact import register

VAR = "NEON_API_KEY"


def resolve_key(main_root: Path | None, env_file: str) -> NeonKey:
    key = _from_environment() or _from_env_file(main_root, env_file) or _from_neonctl()
    if key is None:
        raise FatalError(
            "no Neon API key found",
            hint=f"set {VAR} in your environment, or {VAR}=... in the main worktree's {env_file}, or run `neonctl auth`",
        )
    register(key.value)
    return key


def _from_environment() -> NeonKey | None:
    value = os.environ.get(VAR, "").strip()
    return NeonKey(value, f"the {VAR} environment variable") if value else None


def _from_env_file(main_root: Path | None, env_file: str) -> NeonKey | None:
    if main_root is None:
        return None
    path = main_root / env_file
    value = (envfile.values(envfile.read(path)).get(VAR) or "").strip()
    return NeonKey(value, f"{VAR} in {path}") if value else None


def credential_files() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    config = Path(xdg) if xdg else Path.home() / ".config"
    return [config / "neon" / "credentials.json", Path.home() / ".config" / "neonctl" / "credentials.json"]


def _from_neonctl() -> NeonKey | None:
    for path in credential_files():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = data.get("access_token") if isinstance(data, dict) else None
        if isinstance(value, str) and value.strip():
            return NeonKey(value.strip(), f"neonctl's credentials file {path}")
    return None
