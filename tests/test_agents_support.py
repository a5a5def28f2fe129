"""The agent-CLI test support itself: the newest release by default, a pin only through the environment."""

from __future__ import annotations

import pytest

import agents_support
from testing import caches


def test_a_pin_overrides_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(agents_support.PIN_ENV, "claude=2.1.197, codex=0.169.0")
    agents_support.newest.cache_clear()
    try:
        assert agents_support.newest("claude") == "2.1.197" and agents_support.newest("codex") == "0.169.0"
    finally:
        agents_support.newest.cache_clear()


def test_an_unknown_pin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(agents_support.PIN_ENV, "claud=2.1.197")
    with pytest.raises(pytest.UsageError, match="unknown agent"):
        agents_support.pinned()


def test_versions_sort_as_numbers() -> None:
    assert max(["2.1.99", "2.1.332", "2.1.197"], key=caches.version_key) == "2.1.332"
    assert caches.version_key("0.225.1") < caches.version_key("0.225.2")
