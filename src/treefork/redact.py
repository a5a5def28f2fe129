"""Secrets known to this process, and the one function that hides them from any text."""

from __future__ import annotations

import re

_SECRETS: set[str] = set()
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]+:)(?P<pw>[^@\s/]+)(?=@)", re.IGNORECASE)


def register(secret: str | None) -> None:
    """Remember a secret so that redact() hides it everywhere from now on."""
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """Hide every registered secret and every password embedded in a URL."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)
