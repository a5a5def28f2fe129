"""The one HTTP seam to Neon API v2: auth header, bounded retries of 423/429/503, errors as BackendError.

Retries follow Neon's own SDK: full-jitter exponential backoff (250 ms base, 10 s cap), `Retry-After`
honoured up to 10 s, at most 10 attempts and a 120 s deadline. The SDK's default of 3 attempts is too few
when several agents branch one project at once: Neon answers 423 to every request that meets a running
operation, so a busy project can refuse a request several times in a row. Only GETs are retried after a
network error; POST and DELETE are retried only on the statuses Neon documents as safe (423, 503, 429).
Every request is bounded: 5 s to connect, and an answer within the read timeout (30 s, or
TREEFORK_NEON_TIMEOUT seconds), never past the deadline; an API that accepted a request and never
answered is not asked again (it would hang as long each time): the command fails at once, saying so.
The API key never appears in a message: it is registered with treefork.redact as soon as it is known.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx costs ~100 ms to import; only Neon commands pay it
    import ssl

    import httpx

from treefork.errors import BackendError
from treefork.redact import register

DEFAULT_HOST = "https://console.neon.tech/api/v2"
RETRY_STATUSES = frozenset({423, 429, 503})
BACKOFF_BASE = 0.25
BACKOFF_CAP = 10.0
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
_PROJECT_PATH = re.compile(r"^/projects/([^/]+)(/branches)?$")


@dataclass(frozen=True)
class NeonKey:
    value: str
    source: str  # e.g. "the NEON_API_KEY environment variable"

    def __repr__(self) -> str:
        return f"NeonKey(source={self.source!r})"


class NeonApiError(BackendError):
    """A Neon API call failed with a status the caller may want to handle (404, 409, 422...)."""

    def __init__(self, message: str, *, hint: str | None, status: int, code: str) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


def read_timeout() -> float:
    """TREEFORK_NEON_TIMEOUT seconds, else 30: how long a request may wait for Neon's answer."""
    raw = os.environ.get("TREEFORK_NEON_TIMEOUT")
    try:
        value = float(raw) if raw else READ_TIMEOUT
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise BackendError(f"bad TREEFORK_NEON_TIMEOUT {raw!r}", hint="seconds, e.g. TREEFORK_NEON_TIMEOUT=60")
    return value


def api_host() -> str:
    return (os.environ.get("NEON_API_HOST") or DEFAULT_HOST).rstrip("/")


_TLS_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def _tls_context() -> ssl.SSLContext:
    """httpx's default context (SSL_CERT_FILE, SSL_CERT_DIR or certifi's roots), made once a process for each
    setting of those variables: loading the roots costs about 15 ms of CPU, which every client paid again."""
    import httpx

    where = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    if where not in _TLS_CONTEXTS:
        _TLS_CONTEXTS[where] = httpx.create_ssl_context()
    return _TLS_CONTEXTS[where]


class NeonApi:
    def __init__(
        self,
        key: NeonKey,
        *,
        base_url: str | None = None,
        max_attempts: int = 10,
        deadline: float = 120.0,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        register(key.value)
        self.key = key
        self.base_url = (base_url or api_host()).rstrip("/")
        self.max_attempts = max_attempts
        self.deadline = deadline
        self._sleep = sleep
        import httpx

        self._transport_error = httpx.TransportError
        self._no_answer_error = (httpx.ReadTimeout, httpx.WriteTimeout)
        self.read_timeout = timeout if timeout is not None else read_timeout()
        self._client = httpx.Client(
            base_url=self.base_url,
            verify=_tls_context(),
            timeout=httpx.Timeout(self.read_timeout, connect=min(CONNECT_TIMEOUT, self.read_timeout)),
            headers={"Authorization": f"Bearer {key.value}", "Accept": "application/json", "User-Agent": "treefork"},
        )

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, params: dict[str, Any] | None = None, *, attempts: int | None = None) -> dict[str, Any]:
        return self._json(self.request("GET", path, params=params, attempts=attempts), f"GET {path}")

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._json(self.request("POST", path, body=body), f"POST {path}")

    def _json(self, response: httpx.Response, where: str) -> dict[str, Any]:
        """The JSON object Neon answers with. A proxy, a captive portal or a wrong NEON_API_HOST answers
        200 with an HTML page: that is the user's to fix, not a bug."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise BackendError(
            f"{self.base_url} answered {where} with {response.status_code} {kind}, not Neon's JSON",
            hint="check NEON_API_HOST (unset it for the real Neon API) and any HTTP proxy (HTTPS_PROXY) in between",
        )

    def delete(self, path: str) -> dict[str, Any] | None:
        """None when Neon answers 204 (the branch does not exist or is already deleted)."""
        response = self.request("DELETE", path)
        return None if response.status_code == 204 or not response.content else self._json(response, f"DELETE {path}")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        attempts: int | None = None,
    ) -> httpx.Response:
        give_up_at = time.monotonic() + self.deadline
        attempts = attempts or self.max_attempts
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._client.request(
                    method, path, params=params, json=body, timeout=self._bounded(give_up_at)
                )
            except self._no_answer_error:
                raise BackendError(
                    f"the Neon API at {self.base_url} accepted {method} {path} but did not answer within "
                    f"{self.read_timeout:g} s",
                    hint="check Neon's status page and your network or proxy, then retry "
                    "(TREEFORK_NEON_TIMEOUT=SECONDS waits longer)",
                ) from None
            except self._transport_error as e:
                if method != "GET" or last or not self._wait(attempt, None, give_up_at):
                    raise BackendError(
                        f"cannot reach the Neon API at {self.base_url}: {type(e).__name__}",
                        hint="check your network, or NEON_API_HOST if you set it",
                    ) from None
                continue
            if response.status_code not in RETRY_STATUSES:
                if response.status_code >= 400:
                    raise self._error(response, method, path)
                return response
            if last or not self._wait(attempt, response.headers.get("Retry-After"), give_up_at):
                raise self._error(response, method, path, gave_up=attempt + 1)
        raise AssertionError("unreachable")

    def _bounded(self, give_up_at: float) -> httpx.Timeout:
        """This request's timeouts: the client's, cut to what is left before the deadline."""
        import httpx

        left = max(0.1, give_up_at - time.monotonic())
        read = min(self.read_timeout, left)
        return httpx.Timeout(read, connect=min(CONNECT_TIMEOUT, read))

    def _wait(self, attempt: int, retry_after: str | None, give_up_at: float) -> bool:
        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
        if retry_after is not None:
            try:
                delay = min(BACKOFF_CAP, max(0.0, float(retry_after)))
            except ValueError:
                pass
        if time.monotonic() + delay > give_up_at:
            return False
        self._sleep(delay)
        return True

    def _error(self, response: httpx.Response, method: str, path: str, *, gave_up: int = 0) -> NeonApiError:
        status = response.status_code
        code, text = _general_error(response)
        message, hint = self._explained(status, text, method, path, gave_up=gave_up)
        return NeonApiError(message, status=status, code=code, hint=hint)

    def _explained(self, status: int, text: str, method: str, path: str, *, gave_up: int) -> tuple[str, str]:
        """What a failed request says to the user, and the fix: by the key's source for 401 and 403."""
        if status == 401:
            return (
                f"{self.key.source} was rejected by Neon (401)",
                "create a new API key in the Neon console (Account settings > API keys) and put it there",
            )
        if status == 403:
            return (
                f"{self.key.source} is not allowed to do this (403): {text}",
                "use a key of the organisation that owns the project",
            )
        match = _PROJECT_PATH.match(path)
        if status == 404 and match:
            return (
                f"Neon project {match.group(1)} not found",
                "check the project id (treefork init --backend neon --project-id ...) and that the key can see it",
            )
        where = f"{method} {path}"
        if gave_up:
            return (
                f"Neon kept answering {status} to {where} after {gave_up} attempts: {text}",
                "Neon is busy or rate-limiting (700 requests/min); wait a minute and retry",
            )
        return f"Neon API error {status} on {where}: {text}", "see the message; retry if it looks transient"


def _general_error(response: httpx.Response) -> tuple[str, str]:
    """GeneralError {code, message, request_id}; anything else is reported by its first line."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and "message" in data:
        message = " ".join(str(data.get("message") or "").split())
        return str(data.get("code") or ""), message or response.reason_phrase
    first = (response.text or response.reason_phrase or "").strip().splitlines()
    return "", (first[0][:200] if first else "")
