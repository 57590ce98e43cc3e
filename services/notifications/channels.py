"""Delivery channels: email over SMTP (aiosmtplib), SMS and WhatsApp through an HTTP
gateway (JSON POST). Each send returns a `SendResult`; a channel never raises.

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
import logging
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr

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


@dataclass(frozen=True)
class GatewayConfig:
    url: str | None
    token: str | None = None
    timeout: float = 15.0


def _error(text: str) -> str:
    return redact(text)[:500]


class EmailChannel:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        name, address = parseaddr(config.sender)
        self._from = formataddr((name, address)) if name else address
        self._domain = address.rpartition("@")[2] or "sinergi.local"
        self._local_hostname = config.local_hostname

    def build(self, msg: OutgoingMessage) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = msg.to
        message["Subject"] = msg.subject or "Sinergi"
        message["Message-ID"] = make_msgid(domain=self._domain)
        message["X-Sinergi-Notification-Id"] = msg.notification_id
        if msg.tracking_code:
            message["X-Sinergi-Tracking-Code"] = msg.tracking_code
        message.set_content(msg.body, charset="utf-8")
        message["Content-Language"] = msg.locale  # after set_content, which resets Content-*
        return message

    async def _ehlo_name(self) -> str:
        # aiosmtplib looks the FQDN up (a blocking call, in a thread) for every
        # connection unless given one; it does not change while the service runs.
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, msg: OutgoingMessage) -> SendResult:
        c = self.config
        if not c.host:
            return SendResult(Outcome.TECHNICAL, "email channel not configured (NOTIFICATIONS_SMTP_HOST)")
        try:
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
            async with client:
                # Composed once connected: an unreachable relay costs no message building.
                _, reply = await client.send_message(self.build(msg))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            outcome = Outcome.PERMANENT if codes and all(code >= 500 for code in codes) else Outcome.TEMPORARY
            return SendResult(outcome, _error(f"recipient refused: {codes}"))
        except aiosmtplib.SMTPAuthenticationError as exc:
            return SendResult(Outcome.TECHNICAL, _error(f"SMTP authentication failed: {exc.code}"))
        except aiosmtplib.SMTPResponseException as exc:
            outcome = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
            return SendResult(outcome, _error(f"SMTP {exc.code}: {exc.message}"))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(Outcome.TEMPORARY, _error(f"{type(exc).__name__}: {exc}"))
        return SendResult(Outcome.DELIVERED, provider_ref=_error(reply)[:200] or None)


class GatewayChannel:
    """SMS or WhatsApp through an HTTP gateway:

    ``POST <url>`` with ``Authorization: Bearer <token>`` and JSON
    ``{"channel", "to", "message", "reference", "locale"}``; a 2xx answer accepts the
    message (its JSON ``id``, if any, is kept as the provider reference).
    """

    def __init__(self, channel: str, config: GatewayConfig) -> None:
        self.channel = channel
        self.config = config

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
