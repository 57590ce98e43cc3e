"""What a service process writes to its log: the production handler of
`configure_logging` at INFO, read back from the stream it writes to. Personal data in a
message, its arguments, its extra fields or an exception's text comes out masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared.kit.logs import configure_logging
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
