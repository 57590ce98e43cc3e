"""What a service process writes to its log: the production handler of
`configure_logging` at INFO, read back from the stream it writes to. Personal data in a
message, its arguments, its extra fields or an exception's text comes out masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import asyncpg
import pytest
from pydantic import BaseModel, Field, ValidationError

from shared.kit.logs import configure_logging, describe_error
from tests.pii import LogRecorder, findings

NIK = "3306061708900001"
PHONE = "081234567890"
EMAIL = "warga.purworejo@example.com"


@pytest.fixture
def service_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    configure_logging("complaints", "INFO")
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_personal_data_is_masked_in_every_part_of_a_log_line(service_output: io.StringIO) -> None:
    log = logging.getLogger("services.complaints.test")
    log.info(f"complaint filed by {NIK} ({PHONE}, {EMAIL})")
    log.info("reporter %s reachable at %s", NIK, PHONE)
    log.info("contact checked", extra={"nik": NIK, "phone": f"+62{PHONE[1:]}", "email": EMAIL})
    try:
        raise ValueError(f"no citizen with NIK {NIK} and phone {PHONE}")
    except ValueError:
        log.exception("lookup failed")

    lines = [json.loads(line) for line in service_output.getvalue().splitlines()]
    assert len(lines) == 4, "every INFO line reaches the service's output"
    text = service_output.getvalue()
    assert findings(text) == [], text
    assert EMAIL not in text
    assert "[NIK]" in lines[0]["message"] and "[PHONE]" in lines[1]["message"]
    assert lines[2]["email"] == "w***@example.com"
    assert "ValueError" in lines[3]["exc_info"] and "[NIK]" in lines[3]["exc_info"]


def test_the_suite_guard_reads_what_the_service_handler_writes(service_output: io.StringIO) -> None:
    with LogRecorder() as recorder:
        logging.getLogger("services.complaints.test").info("verified by %s", PHONE)
    assert recorder.lines == service_output.getvalue().splitlines()
    assert recorder.lines and findings(recorder.lines[0]) == []


def test_an_error_is_described_without_what_it_failed_on() -> None:
    class Title(BaseModel):
        title: str = Field(max_length=5)

    with pytest.raises(ValidationError) as invalid:
        Title(title="Rumah Bu Sri roboh")
    assert describe_error(invalid.value) == "ValidationError(title: string_too_long)"
    quoting = ValueError("cannot take 'Rumah Bu Sri roboh' from 3306061708900001 or warga@example.com")
    described = describe_error(quoting)
    assert described == "ValueError(cannot take … from [NIK] or w***@example.com)"
    refused = asyncpg.CheckViolationError("new row violates check constraint")
    refused.sqlstate, refused.constraint_name, refused.detail = "23514", "title_short", "Failing row (Sri)"
    assert describe_error(refused) == "CheckViolationError(sqlstate=23514 constraint_name=title_short)"
