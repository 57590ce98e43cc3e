"""A local SMTP relay for the tests of the email channel and the delivery worker: it
counts connections (one EHLO each), keeps what it accepts, refuses chosen recipients and
drops connections on demand, as a real relay under trouble would.

Runs aiosmtpd in its own thread (its own event loop), like the kit's SMTP sink.
"""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from shared.runtime.embedded import free_port


@dataclass
class Relay:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    # recipient -> the reply to its RCPT TO, e.g. "550 5.1.1 no such mailbox"
    refuse: dict[str, str] = field(default_factory=dict)
    # Transactions (MAIL FROM, counted from 1 across all connections) at which the
    # relay drops the connection without a word; `drop_from` drops every one from then on.
    drop_at: set[int] = field(default_factory=set)
    drop_from: int | None = None
    connections: int = 0
    transactions: int = 0
    accepted: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    _open: list[Any] = field(default_factory=list, repr=False)  # the servers' transports
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _controller: Controller | None = field(default=None, repr=False)

    def __enter__(self) -> Relay:
        self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._controller is not None:
            self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.accepted if m["To"] == address]

    def hang_up(self) -> None:
        """Close every open connection, as a relay does with idle ones."""
        assert self._controller is not None and self._controller.loop is not None
        with self._lock:
            transports, self._open = self._open, []
        for transport in transports:
            self._controller.loop.call_soon_threadsafe(transport.close)

    # ----- aiosmtpd hooks (called in the relay's thread) ----------------------------------

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self._lock:
            self.connections += 1
            self._open.append(server.transport)
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            self.transactions += 1
            n = self.transactions
        if n in self.drop_at or (self.drop_from is not None and n >= self.drop_from):
            server.transport.close()
            return "421 4.3.2 going away"  # never read: the connection is gone
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.accepted.append(message)
            self.raw.append(raw)
        return "250 Message accepted for delivery"
