"""JSON-lines logging with the event id and correlation id of the work in hand.

Personal data must never reach a log. Code logs ids, not people; as a second line of
defence a filter masks anything shaped like a NIK (16 digits) or an Indonesian mobile
number in every message and field.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import asyncpg
from pydantic import ValidationError
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from shared.schemas import Envelope

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)

_NIK = re.compile(r"(?<!\d)\d{16}(?!\d)")
_PHONE = re.compile(r"(?<![\w-])(?:\+?62|0)8\d{7,11}(?![\w-])")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def redact(text: str) -> str:
    text = _NIK.sub("[NIK]", text)
    text = _PHONE.sub("[PHONE]", text)
    return _EMAIL.sub(r"\1***@\2", text)


# A value an error message quotes ('…' or "…"), e.g. the input PostgreSQL could not
# take or the record the CloudEvents SDK could not parse.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
# What a described error may hold at most (a dead letter's header, a log field).
ERROR_TEXT_LIMIT = 1000


def describe_error(exc: BaseException) -> str:
    """`exc` as a dead letter or a log line may keep it, without what it failed on: a
    PostgreSQL error by its type, code and the names of its table, column and
    constraint (never its message or detail, which may quote a row); a validation error
    by where and what kind each failure was; any other by its type and its message with
    every quoted value left out and anything shaped like a NIK, phone or email masked."""
    name = type(exc).__name__
    if isinstance(exc, asyncpg.PostgresError):
        names = (
            f"{n}={getattr(exc, n)}" for n in ("sqlstate", "table_name", "column_name", "constraint_name")
        )
        return f"{name}({' '.join(n for n in names if not n.endswith('=None'))})"
    if isinstance(exc, ValidationError):
        failures = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors(include_input=False)
        )
        return f"{name}({failures})"[:ERROR_TEXT_LIMIT]
    return f"{name}({redact(_QUOTED.sub('…', str(exc)))})"[:ERROR_TEXT_LIMIT]


_TRACEBACKS = logging.Formatter()


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _correlation_id.get()
        record.event_id = _event_id.get()
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if record.exc_info:
            # A traceback ends with the exception's message, which may quote input.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname"):
                record.__dict__[key] = redact(value)
        return True


def json_formatter(service: str) -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s %(event_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"service": service},
    )


def redacting_filter() -> logging.Filter:
    """Adds the event and correlation ids and masks personal data (see `redact`)."""
    return _ContextFilter()


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installs, so reconfiguring replaces only it."""


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = _ServiceHandler(sys.stdout)
    handler.setFormatter(json_formatter(service))
    handler.addFilter(redacting_filter())
    root = logging.getLogger()
    root.handlers[:] = [
        h for h in root.handlers if not isinstance(h, _ServiceHandler | logging.StreamHandler)
    ]
    root.addHandler(handler)
    root.setLevel(level)
    # Per-request access lines come from our own middleware, with the route template.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("faststream").setLevel(logging.WARNING)


def set_correlation_id(value: str | None) -> contextvars.Token[str | None]:
    return _correlation_id.set(value)


def correlation_id() -> str | None:
    return _correlation_id.get()


@contextlib.contextmanager
def event_context(envelope: Envelope) -> Iterator[None]:
    t1 = _event_id.set(envelope.id)
    t2 = _correlation_id.set(envelope.correlationid or envelope.id)
    try:
        yield
    finally:
        _event_id.reset(t1)
        _correlation_id.reset(t2)
