"""The suite-wide personal-data guard (UU PDP 27/2022): at the end of the session every
topic is read and every log line written during the suite (in-process and by service
processes) is scanned; a NIK or an unmasked Indonesian mobile number fails the run."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from shared.kit.logs import _ServiceHandler

# A NIK: a real province code, then 14 digits. A mobile number: 08…, 628… or +628….
# Word boundaries, so hex digests (citizen references) that happen to hold 16 digits in a
# row are not taken for a NIK.
NIK = re.compile(r"(?<![\w])(?:1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-7])\d{14}(?![\w])")
PHONE = re.compile(r"(?<![\w-])(?:\+?62|0)8[1-35-9]\d{7,10}(?![\w-])")


def findings(text: str) -> list[str]:
    return [m.group(0) for m in NIK.finditer(text)] + [m.group(0) for m in PHONE.finditer(text)]


class LogRecorder:
    """Every line the services' own log handler writes in this process, exactly as
    written (after the production filter, at the production format), whatever level
    the suite runs at: `configure_logging`'s handler is the one observed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._original = _ServiceHandler.format

    def __enter__(self) -> LogRecorder:
        original, lines = self._original, self.lines

        def format_and_record(handler: logging.Handler, record: logging.LogRecord) -> str:
            line = original(handler, record)
            lines.append(line)
            return line

        _ServiceHandler.format = format_and_record  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        _ServiceHandler.format = self._original  # type: ignore[method-assign]


def scan_logs(lines: list[str], log_dir: Path) -> list[str]:
    problems = [f"log line: {line[:300]}" for line in lines if findings(line)]
    for path in sorted(log_dir.glob("*.log")) if log_dir.exists() else []:
        for line in path.read_text(errors="replace").splitlines():
            if findings(line):
                problems.append(f"{path.name}: {line[:300]}")
    return problems


def scan_records(topic: str, values: list[bytes | None]) -> list[str]:
    problems = []
    for value in values:
        text = (value or b"").decode(errors="replace")
        found = findings(text)
        if found:
            problems.append(f"topic {topic}: {found} in {text[:200]}")
    return problems
