"""A port squatter that speaks PostgreSQL's protocol (the red team's kit, `fakepg.py`): it listens on
127.0.0.1:PORT, asks every client for a cleartext password and records what it gets. A driver that answers
such a request hands it the password; one told `require_auth=scram-sha-256` hangs up instead."""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104
_CLEARTEXT_PASSWORD = 3


@dataclass
class Captured:
    user: str
    database: str
    password: str


@dataclass
class FakePg:
    """`with FakePg(port) as fake:` ... `fake.captured` (every password sent), `fake.connections` (every client)."""

    port: int
    captured: list[Captured] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakePg:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes accept() in the thread (close alone does not)
        except OSError:
            pass
        self._thread.join(timeout=10)
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            with client:
                try:
                    self._handle(client)
                except (OSError, EOFError, struct.error):
                    pass  # the client hung up: what a client that requires SCRAM does

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        while True:
            body = _message(client, typed=False)
            code = struct.unpack("!I", body[:4])[0]
            if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                break
            client.sendall(b"N")  # no TLS, no GSS: as a cluster on loopback
        fields = body[4:].split(b"\0")
        startup = dict(zip(fields[0::2], fields[1::2], strict=False))
        client.sendall(b"R" + struct.pack("!II", 8, _CLEARTEXT_PASSWORD))
        password = _message(client, typed=True).rstrip(b"\0").decode()
        self.captured.append(
            Captured(startup.get(b"user", b"").decode(), startup.get(b"database", b"").decode(), password)
        )
        error = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        client.sendall(b"E" + struct.pack("!I", len(error) + 4) + error)


def _message(client: socket.socket, *, typed: bool) -> bytes:
    if typed:
        _recv(client, 1)
    length = struct.unpack("!I", _recv(client, 4))[0]
    return _recv(client, length - 4)


def _recv(client: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = client.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out
