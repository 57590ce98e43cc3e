"""A local SMTP server that accepts every message and keeps it: the notification
service's mail relay for `make run` and the tests (production uses the regency's relay
or Mailpit).

Runs aiosmtpd in its own thread (its own event loop), so a synchronous runner and an
asyncio test can both use it. Messages are kept in memory; with `mail_dir` each one is
also written as an `.eml` file that any mail program opens.

    with SmtpSink(mail_dir=Path(".run/mail")) as sink:
        ...  # NOTIFICATIONS_SMTP_HOST=sink.host, NOTIFICATIONS_SMTP_PORT=sink.port
        sink.messages_to("warga@example.com")
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shared.runtime.embedded import InProcessServer, free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    received_at: datetime
    path: Path | None = None

    @cached_property
    def message(self) -> EmailMessage:
        # Parsed when asked for: parsing every message on arrival (~2 ms each) slowed the
        # sink's answers under load, and benchmarks only search the raw bytes.
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        self.sink._keep(envelope.mail_from, tuple(envelope.rcpt_tos), raw)
        return "250 Message accepted for delivery"


class SmtpSink(InProcessServer):
    scheme = "smtp"

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, mail_dir: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.mail_dir = Path(mail_dir) if mail_dir else None
        self._messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        if self.mail_dir:
            self.mail_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _keep(self, mail_from: str, rcpt_tos: tuple[str, ...], raw: bytes) -> None:
        now = datetime.now(UTC)
        with self._lock:
            n = len(self._messages) + 1
            path = None
            if self.mail_dir:
                path = self.mail_dir / f"{now:%Y%m%dT%H%M%S}-{n:05d}.eml"
                path.write_bytes(raw)
            self._messages.append(ReceivedMail(mail_from, rcpt_tos, raw, now, path))

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    def messages_to(self, address: str) -> list[ReceivedMail]:
        address = address.lower()
        return [m for m in self.messages if address in (r.lower() for r in m.rcpt_tos)]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


def main() -> None:
    """`python -m shared.runtime.smtp_sink [--port 1025] [--mail-dir DIR]`: a standalone sink."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--mail-dir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args()
    with SmtpSink(port=args.port, mail_dir=args.mail_dir) as sink:
        print(f"SMTP sink on {sink.url}, writing to {args.mail_dir}; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
