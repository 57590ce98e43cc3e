"""Delivery channels: email over SMTP (aiosmtplib), SMS and WhatsApp through an HTTP
gateway (JSON POST). `send_many` sends a claimed batch and returns one `SendResult` per
message, in order (`send` is the batch of one); a channel never raises. Email reuses a
few SMTP connections for a batch; the gateways take one HTTP request a message, over
the worker's shared client.

Outcome classification:
- SMTP 2xx, gateway 2xx: delivered (accepted by the relay / gateway);
- SMTP 4xx, connection problems, timeouts, gateway 5xx / 429 / 408: temporary (retried);
- SMTP 5xx on the recipient, gateway 4xx: permanent (this address cannot be reached);
- SMTP authentication refused, channel not configured, bad gateway token: technical
  (our configuration: an officer resends after the fix).

Errors are redacted (no address, no number) before they are stored or published.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Protocol

import aiosmtplib
import httpx

from services.notifications.domain import Outcome, SendResult
from shared.kit.logs import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: str
    channel: str
    to: str
    subject: str | None
    body: str
    locale: str
    tracking_code: str | None = None


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None  # None: when the server offers it
    timeout: float = 30.0
    local_hostname: str | None = None  # EHLO name; None: this host's FQDN
    connections: int = 4  # at once, per batch of messages


@dataclass(frozen=True)
class GatewayConfig:
    url: str | None
    token: str | None = None
    timeout: float = 15.0


def _error(text: str) -> str:
    return redact(text)[:500]


class EmailChannel:
    """Email through the SMTP relay; batches go through a `session`."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        name, address = parseaddr(config.sender)
        self._sender = address
        self._from = _header_value(formataddr((name, address), charset="utf-8") if name else address)
        self._domain = address.rpartition("@")[2] or "sinergi.local"
        self._local_hostname = config.local_hostname

    def build(self, msg: OutgoingMessage) -> bytes:
        """The message as sent: one text/plain part in UTF-8. Composed by hand, since the
        stdlib's header registry and generator cost milliseconds a message; what a mail
        reader decodes is the same (the tests parse it back)."""
        body = msg.body if msg.body.endswith("\n") else msg.body + "\n"
        if body.isascii() and max(map(len, body.split("\n"))) <= _MAX_LINE:
            encoding, payload = "7bit", body.encode("ascii")
        else:  # long lines or non-ASCII text: quoted-printable reads well and passes any relay
            encoding, payload = "quoted-printable", binascii.b2a_qp(body.encode(), istext=True)
        headers = [
            ("From", self._from),
            ("To", _header_value(msg.to)),
            ("Subject", _encoded("Subject", msg.subject or "Sinergi")),
            ("Date", formatdate(usegmt=True)),
            ("Message-ID", make_msgid(domain=self._domain)),
            ("X-Sinergi-Notification-Id", _header_value(msg.notification_id)),
        ]
        if msg.tracking_code:
            headers.append(("X-Sinergi-Tracking-Code", _header_value(msg.tracking_code)))
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", 'text/plain; charset="utf-8"'),
            ("Content-Transfer-Encoding", encoding),
            ("Content-Language", _header_value(msg.locale)),
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        # A non-ASCII address travels as UTF-8 (SMTPUTF8), as the stdlib would send it.
        return head.encode("utf-8") + payload

    async def _ehlo_name(self) -> str:
        # aiosmtplib looks the FQDN up (a blocking call, in a thread) for every
        # connection unless given one; it does not change while the service runs.
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    def session(self) -> SmtpSession:
        """Connections to the relay for a run of batches (`async with`): opened as a
        batch needs them, kept open for the next batch, closed when the run ends."""
        return SmtpSession(self)

    async def send(self, msg: OutgoingMessage) -> SendResult:
        return (await self.send_many([msg]))[0]

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        async with self.session() as session:
            return await session.send_many(messages)

    async def connect(self) -> aiosmtplib.SMTP:
        c = self.config
        client = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            local_hostname=await self._ehlo_name(),
            username=c.username,
            password=c.password,
            use_tls=c.use_tls,
            start_tls=c.start_tls,
            timeout=c.timeout,
        )
        await client.connect()
        return client

    async def send_over(self, client: aiosmtplib.SMTP, msg: OutgoingMessage) -> SendResult:
        """Send one message on an open connection; never raises. A failure that leaves
        the connection unusable also closes it."""
        try:
            # Composed once connected: an unreachable relay costs no message building.
            raw = self.build(msg)
        except Exception as exc:
            return _outcome_of(exc)
        options = [] if msg.to.isascii() else ["SMTPUTF8"]
        try:
            _, reply = await client.sendmail(self._sender, [msg.to], raw, mail_options=options)
        except ValueError as exc:  # an address that cannot go on an SMTP command line
            return SendResult(Outcome.TECHNICAL, _error(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:
            if not isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
                client.close()  # in an unknown state: no further message on it
            return _outcome_of(exc)
        return SendResult(Outcome.DELIVERED, provider_ref=_error(reply)[:200] or None)


class SmtpSession:
    """A batch goes over at most `connections` connections at once, each taking the
    next waiting message until none is left; a connection and its EHLO cost more than
    a message. Connections left open serve the session's next batch."""

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel
        self._idle: list[aiosmtplib.SMTP] = []

    async def __aenter__(self) -> SmtpSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_close(client) for client in idle))

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send `messages`, one result each, in order. A broken connection costs only the
        message in flight (a temporary failure: it may or may not have arrived) and is
        replaced; when no connection can be had, what still waits gets its error."""
        if not self.channel.config.host:
            unconfigured = SendResult(
                Outcome.TECHNICAL, "email channel not configured (NOTIFICATIONS_SMTP_HOST)"
            )
            return [unconfigured] * len(messages)
        waiting = deque(enumerate(messages))
        results: list[SendResult | None] = [None] * len(messages)
        broken: list[SendResult] = []
        connections = max(1, min(self.channel.config.connections, len(messages)))
        await asyncio.gather(*(self._share(waiting, results, broken) for _ in range(connections)))
        return [r or broken[-1] for r in results]

    async def _share(
        self,
        waiting: deque[tuple[int, OutgoingMessage]],
        results: list[SendResult | None],
        broken: list[SendResult],
    ) -> None:
        """One connection's share of a batch, on a new connection after one that broke."""
        while waiting:
            client = self._reuse()
            fresh = client is None
            if client is None:
                try:
                    client = await self.channel.connect()
                except Exception as exc:
                    broken.append(_outcome_of(exc))
                    return
            carried, last = 0, None
            try:
                while waiting:
                    index, msg = waiting.popleft()
                    last = results[index] = await self.channel.send_over(client, msg)
                    if not client.is_connected:
                        break
                    carried += 1
            except BaseException:  # cancelled mid-send: the connection's state is unknown
                client.close()
                raise
            if client.is_connected:
                self._idle.append(client)
            elif waiting and fresh and carried == 0:
                # Not one message went over a new connection: rather than hammer a relay
                # that drops us, leave the rest to the other connections, or to their retry.
                broken.append(last or SendResult(Outcome.TEMPORARY, "SMTP connection lost"))
                return

    def _reuse(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:  # else the relay closed it while it waited
                return client
        return None


_MAX_LINE = 78  # RFC 5322's recommended line length, as the stdlib's own choice of encoding


def _header_value(value: str) -> str:
    # A line break in a header value would start a header of the caller's choosing.
    return " ".join(value.splitlines())


def _encoded(name: str, value: str) -> str:
    """A header value folded to lines of at most 78 characters; as RFC 2047 encoded words
    (UTF-8, base64) when it is not plain ASCII. The stdlib's `Header` does the same at
    ten times the cost (it measures every candidate split)."""
    value = _header_value(value)
    if value.isascii() and "=?" not in value:  # "=?" would read as an encoded word
        return _fold(len(name) + 2, value.split(" "))
    words: list[str] = []
    chunk = b""
    for char in value:
        encoded = char.encode()
        if len(chunk) + len(encoded) > _WORD_BYTES:  # never split a character's bytes
            words.append(_b_word(chunk))
            chunk = b""
        chunk += encoded
    words.append(_b_word(chunk))
    return _fold(len(name) + 2, words)  # the space between encoded words is not text


_WORD_BYTES = 39  # 52 base64 characters: an encoded word of 64, a first line of at most 78


def _b_word(data: bytes) -> str:
    return f"=?utf-8?b?{binascii.b2a_base64(data, newline=False).decode('ascii')}?="


def _fold(used: int, parts: list[str]) -> str:
    """Join `parts` with spaces, folding (CRLF before the space) ahead of a part that
    would pass 78 characters; `used`: what the line holds before the value."""
    text = parts[0]
    used += len(text)
    for part in parts[1:]:
        if part and used + 1 + len(part) > _MAX_LINE:
            text += "\r\n " + part
            used = 1 + len(part)
        else:
            text += " " + part
            used += 1 + len(part)
    return text


def _outcome_of(exc: BaseException) -> SendResult:
    """How an SMTP failure counts (see the module's docstring)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        outcome = Outcome.PERMANENT if codes and all(code >= 500 for code in codes) else Outcome.TEMPORARY
        return SendResult(outcome, _error(f"recipient refused: {codes}"))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SendResult(Outcome.TECHNICAL, _error(f"SMTP authentication failed: {exc.code}"))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        outcome = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
        return SendResult(outcome, _error(f"SMTP {exc.code}: {exc.message}"))
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return SendResult(Outcome.TEMPORARY, _error(f"{type(exc).__name__}: {exc}"))
    # A bug of ours, not the relay's answer: an officer resends after the fix.
    log.error("email channel failed unexpectedly", exc_info=exc)
    return SendResult(Outcome.TECHNICAL, _error(f"{type(exc).__name__}: {exc}"))


async def _close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


class GatewayChannel:
    """SMS or WhatsApp through an HTTP gateway:

    ``POST <url>`` with ``Authorization: Bearer <token>`` and JSON
    ``{"channel", "to", "message", "reference", "locale"}``; a 2xx answer accepts the
    message (its JSON ``id``, if any, is kept as the provider reference).
    """

    def __init__(self, channel: str, config: GatewayConfig) -> None:
        self.channel = channel
        self.config = config

    @contextlib.asynccontextmanager
    async def session(self, client: httpx.AsyncClient) -> AsyncIterator[GatewaySession]:
        """A run of batches over the worker's HTTP client (which keeps its connections)."""
        yield GatewaySession(self, client)

    async def send(self, msg: OutgoingMessage, client: httpx.AsyncClient) -> SendResult:
        c = self.config
        if not c.url:
            env = f"NOTIFICATIONS_{self.channel.upper()}_GATEWAY_URL"
            return SendResult(Outcome.TECHNICAL, f"{self.channel} channel not configured ({env})")
        headers = {"Authorization": f"Bearer {c.token}"} if c.token else {}
        payload = {
            "channel": self.channel,
            "to": msg.to,
            "message": msg.body,
            "reference": msg.notification_id,
            "locale": msg.locale,
        }
        try:
            response = await client.post(c.url, json=payload, headers=headers, timeout=c.timeout)
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            return SendResult(Outcome.TEMPORARY, _error(f"gateway unreachable: {type(exc).__name__}"))
        status = response.status_code
        if 200 <= status < 300:
            ref = None
            try:
                body = response.json()
                ref = str(body.get("id"))[:200] if isinstance(body, dict) and body.get("id") else None
            except ValueError:
                pass
            return SendResult(Outcome.DELIVERED, provider_ref=ref)
        detail = _error(f"gateway answered {status}: {response.text[:200]}")
        if status in (401, 403):
            return SendResult(Outcome.TECHNICAL, detail)
        if status >= 500 or status in (408, 425, 429):
            return SendResult(Outcome.TEMPORARY, detail)
        return SendResult(Outcome.PERMANENT, detail)


@dataclass(frozen=True)
class GatewaySession:
    channel: GatewayChannel
    client: httpx.AsyncClient

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One request a message, all at once (the rate limit bounds how many)."""
        return list(await asyncio.gather(*(self.channel.send(msg, self.client) for msg in messages)))


class Session(Protocol):
    """What the worker sends a claimed batch of one channel through."""

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]: ...
