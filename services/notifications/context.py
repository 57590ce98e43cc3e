"""What the notification service's use cases need, built once by the app."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from services.notifications.channels import EmailChannel, GatewayChannel
from services.notifications.domain import PHONE_CHANNELS, WIB, RetryPolicy, TokenBucket
from services.notifications.rules import RuleBook
from services.notifications.templates import TemplateStore
from shared.kit.citizen import SessionSigner
from shared.kit.clock import utc_now
from shared.kit.data_keys import DataKeyClient
from shared.kit.privacy import contact_refs
from shared.kit.settings import PlatformSettings
from shared.kit.uow import EventSource
from shared.schemas import notifications as schema


@dataclass
class Context:
    """What the use cases need; built once by the app, replaced freely in tests."""

    pool: Callable[[], asyncpg.Pool]
    platform: PlatformSettings
    rulebook: RuleBook
    templates: TemplateStore
    email: EmailChannel
    gateways: dict[str, GatewayChannel]
    buckets: dict[str, TokenBucket]
    retry: RetryPolicy
    metrics: Any  # app.NotificationMetrics
    # This service's own key (NOTIFICATIONS_CONTACT_KEY): the addresses and code messages
    # it keeps to deliver and resend, and contacts of events published before data keys.
    contact_key: str
    # The domain services' citizens' data keys, asked for while they exist (None: every
    # contact with a data key is unreadable here).
    data_keys: DataKeyClient | None = None
    default_locale: str = "id"
    tz: ZoneInfo = WIB
    lease: timedelta = timedelta(seconds=120)
    batch_size: int = 50
    region_name: str = "Kabupaten Purworejo"
    tracking_url: str | None = None  # e.g. http://127.0.0.1:8000/lacak/{code}
    booking_url: str | None = None  # the portal's Antrean, e.g. http://127.0.0.1:8000/antrean
    # NOTIFICATIONS_DELIVERY_PAUSED: nothing is sent; notifications wait as `created`.
    delivery_paused: bool = False
    # Citizens' sessions, issued after a one-time code (None: no key, no sessions).
    sessions: SessionSigner | None = None
    session_minutes: float = 30.0
    # Messages a submission may cause to one contact that never proved itself, per hour.
    unsolicited_per_hour: int = 2
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    @property
    def origin(self) -> EventSource:
        """Where the service's events go: notifications.events."""
        return EventSource(schema.TOPIC, schema.SOURCE, self.platform.region)

    @property
    def citizen_key(self) -> str:
        """The key of citizen and contact references (keyed hashes, never the value)."""
        return self.platform.citizen_ref_key.get_secret_value()

    def address_ref(self, channel: str, address: str) -> str:
        """The contact reference of the address a message on `channel` goes to: what a
        session proving that phone number or email address carries."""
        (ref,) = contact_refs(self.citizen_key, **{"email" if channel == "email" else "phone": address})
        return ref

    def phone_channels(self) -> list[str]:
        """The phone channels with a gateway configured, in the order codes try them."""
        return [c for c in PHONE_CHANNELS if self.gateways[c].config.url]

    def tls(self) -> ssl.SSLContext:
        """The gateways' TLS settings, built once: loading the CA bundle takes tens of
        milliseconds, too much for every round of the worker."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls
