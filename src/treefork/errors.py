"""The exceptions treefork raises on purpose. Everything else is a bug."""

from __future__ import annotations


class FatalError(Exception):
    """Something the user can fix. Shown as one line, with the fix, exit code 1."""

    exit_code = 1  # exitcodes.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class BackendError(FatalError):
    """The database backend refused or failed."""


class ProcError(FatalError):
    """An external command failed."""

    def __init__(self, args: tuple[str, ...], rc: int, out: str, err: str, *, hint: str | None = None) -> None:
        detail = (err.strip() or out.strip()).splitlines()
        last = detail[-1] if detail else "(no output)"
        super().__init__(f"`{' '.join(args[:3])}` failed (exit {rc}): {last}", hint=hint)
        self.rc = rc
        self.out = out
        self.err = err


class ParentBusyError(BackendError):
    """The parent database has live connections, so it cannot be used as a template."""

    def __init__(self, message: str, *, hint: str, blockers: list[dict[str, object]]) -> None:
        super().__init__(message, hint=hint)
        self.blockers = blockers
