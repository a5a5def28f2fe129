"""Where treefork keeps its own machine-wide files (the embedded server, the crash log)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_HOME = Path("/var/lib/treefork")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def treefork_home() -> Path:
    """TREEFORK_HOME, else /var/lib/treefork for root, else the user's data dir (~/.local/share/treefork)."""
    env = os.environ.get("TREEFORK_HOME")
    if env:
        return Path(env).expanduser().absolute()
    if is_root():
        return ROOT_HOME
    import platformdirs  # imported here: TREEFORK_HOME and root never need it

    return Path(platformdirs.user_data_dir("treefork", appauthor=False))
