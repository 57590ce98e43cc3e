"""Errors a domain or use case raises, each with its HTTP meaning. Pure: no web imports,
so domain code can raise them and the app factory maps them once for every service."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    status_code = 400
    # Response headers the error calls for (e.g. Retry-After of a 429).
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class IllegalTransition(DomainError):
    """The command is not allowed in the aggregate's current state."""

    status_code = 409

    def __init__(self, message: str, *, current: str | None = None, command: str | None = None) -> None:
        super().__init__(message)
        self.current = current
        self.command = command


class Conflict(DomainError):
    status_code = 409


class InvalidField(DomainError):
    """A value passed schema validation but breaks a domain rule: reported like a 422
    from schema validation, with the field's location."""

    status_code = 422

    def __init__(self, field: str | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc: tuple[str | int, ...] = ("body", *((field,) if isinstance(field, str) else field))
        self.errors: list[tuple[tuple[str | int, ...], str]] = [(self.loc, message)]


class InvalidFields(InvalidField):
    """Several field-level errors at once, so the client can fix them all in one go."""

    def __init__(self, errors: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        first_loc, first_message = errors[0]
        super().__init__(tuple(first_loc), first_message)
        self.errors = [(("body", *loc), message) for loc, message in errors]


class Forbidden(DomainError):
    """The officer is authenticated but may not act on this item (e.g. another OPD's)."""

    status_code = 403


class RateLimited(DomainError):
    """Too many requests of one kind from one client address or for one contact (see
    shared/kit/limits.py): answered 429 with Retry-After. The message names neither the
    rule nor the key, so it tells nobody whether a NIK or contact was seen before."""

    status_code = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"Terlalu banyak permintaan. Silakan coba lagi dalam {retry_after_seconds} detik.")
        self.retry_after_seconds = retry_after_seconds
        self.headers = {"Retry-After": str(retry_after_seconds)}
