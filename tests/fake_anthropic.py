"""A tiny local stand-in for the Anthropic Messages API (POST /v1/messages, SSE when `stream` is true), so
the real `claude` CLI can run whole sessions offline. A test gives it a `reply(body) -> list of blocks`;
each block is {"type": "text", "text": ...} or {"type": "tool_use", "name": ..., "input": {...}}."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from testing.loopback import LoopbackHTTP

Reply = Callable[[dict[str, Any]], list[dict[str, Any]]]
_ids = itertools.count(1)


def text_reply(text: str = "ok") -> Reply:
    return lambda body: [{"type": "text", "text": text}]


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message (tool results included), for scripting replies."""
    msgs = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not msgs:
        return ""
    content = msgs[-1].get("content")
    if isinstance(content, str):
        return content
    return json.dumps(content)


class FakeAnthropic:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "fake"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    return self._json(200, {"input_tokens": 10})
                if not path.endswith("/v1/messages"):
                    return self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "fake"}})
                fake.requests.append(body)
                blocks = [_complete(b) for b in fake.reply(body)]
                if body.get("stream"):
                    return self._sse(body, blocks)
                return self._json(200, _message(body, blocks))

            def _json(self, code: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _sse(self, body: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                for event in _events(body, blocks):
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self.http = LoopbackHTTP(Handler)

    @property
    def url(self) -> str:
        return self.http.url

    def __enter__(self) -> FakeAnthropic:
        self.http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()


def _complete(block: dict[str, Any]) -> dict[str, Any]:
    if block["type"] == "tool_use":
        return {"id": f"toolu_{next(_ids):04d}", **block}
    return block


def _stop_reason(blocks: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def _message(body: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": blocks,
        "stop_reason": _stop_reason(blocks),
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


def _events(body: dict[str, Any], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = {**_message(body, []), "stop_reason": None}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            events.append({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
            events.append(
                {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": b["text"]}}
            )
        else:
            head = {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}
            events.append({"type": "content_block_start", "index": i, "content_block": head})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}
            events.append({"type": "content_block_delta", "index": i, "delta": delta})
        events.append({"type": "content_block_stop", "index": i})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(blocks), "stop_sequence": None},
            "usage": {"output_tokens": 10},
        }
    )
    events.append({"type": "message_stop"})
    return events
