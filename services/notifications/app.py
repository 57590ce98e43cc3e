"""Assembles the notification service from the kit: settings, consumer, worker, routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from pydantic import Field, SecretStr

from services.notifications import api, delivery, handlers, intake
from services.notifications.channels import EmailChannel, GatewayChannel, GatewayConfig, SmtpConfig
from services.notifications.domain import CHANNELS, RetryPolicy, TokenBucket
from services.notifications.repository import DELIVERY_CHANNEL, CitizenMessages
from services.notifications.rules import RuleBook
from services.notifications.templates import TemplateStore
from shared.kit.app import ConsumerSpec, PeriodicJob, Service, ServiceSpec, create_app, service_settings
from shared.kit.citizen import MAX_SESSION_MINUTES, CitizenSessions, LocalKeys, SessionSigner, signing_key_pem
from shared.kit.data_keys import DataKeyClient, KeyReaderToken
from shared.kit.metrics import DomainMetrics, Metric
from shared.kit.settings import DEV_KEY_READER_SECRET, require_production_keys
from shared.runtime.topology import port_of
from shared.schemas import EGOV_TOPICS

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)
# A valid Fernet key (32 url-safe base64 bytes), for development only (production refuses it).
DEV_CONTACT_KEY = "c2luZXJnaS1kZXZlbG9wbWVudC1jb250YWN0LWtleSE="
# The services whose events carry contacts sealed with their citizens' data keys.
KEY_HOLDERS = ("complaints", "permits", "health")


class NotificationsSettings(service_settings("notifications")):
    # What to listen to (JSON list in the environment), in which consumer group; the
    # dead-letter topic is `<consumer_group>.dlq`.
    topics: list[str] = Field(default_factory=lambda: list(EGOV_TOPICS))
    consumer_group: str = "notifications"
    # The operator's files, reloaded when they change.
    rules_file: Path = HERE / "rules.yaml"
    recipients_file: Path = HERE / "recipients.yaml"
    templates_dir: Path = HERE / "templates"
    default_locale: str = "id"
    timezone: str = "Asia/Jakarta"
    tracking_url: str | None = Field(
        None, description="Link put in messages, with {code}, e.g. https://sinergi.example/lacak/{code}"
    )
    booking_url: str | None = Field(
        None,
        description="The portal's Antrean, offered to book another date, e.g. https://sinergi.example/antrean",
    )
    # Email over SMTP.
    smtp_host: str | None = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    smtp_starttls: bool | None = None
    smtp_from: str = "Sinergi Kabupaten Purworejo <noreply@purworejokab.go.id>"
    smtp_timeout_seconds: float = 30.0
    smtp_local_hostname: str | None = Field(
        None, description="Name given in EHLO; by default this host's FQDN, looked up once"
    )
    smtp_connections: int = Field(
        4, ge=1, description="SMTP connections a batch of emails is spread over, each reused for its share"
    )
    # SMS and WhatsApp through an HTTP gateway (JSON POST).
    sms_gateway_url: str | None = None
    whatsapp_gateway_url: str | None = None
    gateway_token: SecretStr | None = None
    gateway_timeout_seconds: float = 15.0
    # Delivery: worker cadence, retries, rate limits (per instance).
    # Hold every delivery while consumption goes on (a gateway incident, a billing cap, a
    # measure of consumption alone): notifications are created and wait as `created`, and
    # go out once this is false again. Single channels are held at runtime through
    # PUT /delivery/holds/{channel} instead.
    delivery_paused: bool = False
    delivery_interval_seconds: float = 1.0
    delivery_batch: int = 50
    sending_lease_seconds: float = 120.0
    max_attempts: int = 8
    retry_base_seconds: float = 60.0
    retry_factor: float = 2.0
    retry_max_seconds: float = 3600.0
    # Per instance. Email goes to the regency's own SMTP relay, which takes far more than a
    # commercial SMS/WhatsApp gateway; set these to what each provider allows.
    email_rate_per_second: float = 100.0
    email_burst: int = 200
    sms_rate_per_second: float = 5.0
    sms_burst: int = 10
    whatsapp_rate_per_second: float = 5.0
    whatsapp_burst: int = 10
    # Addresses and bodies of final notifications are forgotten after this.
    retention_days: float = 30.0
    # Citizens' sessions (after a one-time code): an EC P-256 private key (32 random bytes
    # in hex, or PEM), which production requires; development signs with the kit's
    # published development key.
    # The issuer is SINERGI_CITIZEN_ISSUER, this service's public URL.
    citizen_signing_key: SecretStr | None = None
    citizen_session_minutes: float = Field(30.0, gt=0, le=MAX_SESSION_MINUTES)
    # Messages a submission (a complaint filed, an application, a booking: rules marked
    # `unsolicited`) may cause to one phone number or address that never proved itself
    # with a one-time code, per hour: the filer's own confirmation gets through, a script
    # naming someone else's number a hundred times does not reach it a hundred times.
    unsolicited_per_hour: int = Field(2, ge=0)
    # This service's own key: the addresses and messages it keeps sealed (Fernet), and
    # the contacts of events published before data keys (sealed with the deployment's
    # former one key: keep its value here while such events may still arrive).
    contact_key: SecretStr = SecretStr(DEV_CONTACT_KEY)
    # Where the domain services answer for their citizens' data keys (JSON object,
    # service name -> base URL), and this service's account at the identity provider
    # (client credentials; its service account has the role `key_reader`).
    data_key_urls: dict[str, str] = Field(
        default_factory=lambda: {name: f"http://127.0.0.1:{port_of(name)}" for name in KEY_HOLDERS}
    )
    key_reader_client_id: str = "sinergi-notifications"
    key_reader_client_secret: SecretStr = SecretStr(DEV_KEY_READER_SECRET)


class NotificationMetrics(DomainMetrics):
    created: Counter = Metric.counter(
        "sinergi_notifications_created_total", "Notifications created", ["channel", "rule"]
    )
    sent: Counter = Metric.counter(
        "sinergi_notifications_sent_total",
        "Notifications delivered (accepted by the SMTP relay or gateway)",
        ["channel", "template"],
    )
    failed: Counter = Metric.counter(
        "sinergi_notifications_failed_total",
        "Failed delivery attempts, by resulting status",
        ["channel", "template", "status"],
    )
    queue_depth: Gauge = Metric.gauge(
        "sinergi_notifications_queue_depth",
        "Notifications waiting to be sent (created or temporary-failure)",
        ["channel"],
    )
    latency: Histogram = Metric.histogram(
        "sinergi_notifications_delivery_latency_seconds",
        "Time from the domain event to delivery",
        ["channel"],
        buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400),
    )
    fallbacks: Counter = Metric.counter(
        "sinergi_notifications_template_fallbacks_total",
        "Messages composed with the generic template because the specific one is missing",
        ["template", "channel", "locale"],
    )
    unruled: Counter = Metric.counter(
        "sinergi_notifications_unruled_events_total",
        "Valid events no rule notifies anyone about",
        ["type"],
    )
    skipped: Counter = Metric.counter(
        "sinergi_notifications_skipped_total",
        "Recipients not notified: opted out, no contact, no usable channel, no address",
        ["reason"],
    )
    recipient_fallbacks: Counter = Metric.counter(
        "sinergi_notifications_recipient_fallbacks_total",
        "Officer notifications sent to the fallback address (OPD or role not in recipients.yaml)",
        ["kind"],
    )
    throttled: Counter = Metric.counter(
        "sinergi_notifications_throttled_total",
        "Worker rounds in which a channel's rate limit allowed nothing",
        ["channel"],
    )
    rules_errors: Counter = Metric.counter(
        "sinergi_notifications_rules_reload_errors_total",
        "Edits of rules.yaml/recipients.yaml that could not be loaded (last good kept)",
    )
    held: Gauge = Metric.gauge(
        "sinergi_notifications_delivery_held",
        "1 while nothing is sent on the channel (NOTIFICATIONS_DELIVERY_PAUSED or an operator's hold)",
        ["channel"],
    )


# The name tests/notifications_support.py builds its contexts' metrics by (no service there).
_metrics = NotificationMetrics


NotificationsService = Service[handlers.Context, NotificationMetrics]


async def _deliver(service: NotificationsService) -> None:
    """The worker. On shutdown it stops claiming and lets sends in flight finish, so a
    notification is not left `sending` until its lease expires."""
    ctx = service.context
    work = asyncio.ensure_future(delivery.deliver_due(ctx))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        ctx.stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(work, 9)
        raise


async def _refresh_gauges(service: NotificationsService) -> None:
    ctx = service.context
    depth = await handlers.queue_depth(ctx)
    held = await delivery.held_channels(ctx)
    for channel in CHANNELS:
        service.domain_metrics.queue_depth.labels(channel).set(depth.get(channel, 0))
        service.domain_metrics.held.labels(channel).set(1 if channel in held else 0)


async def _backfill_address_refs(service: NotificationsService) -> None:
    done = await handlers.backfill_address_refs(service.context)
    if done:
        log.info("address hashes added", extra={"messages": done})


async def _close_key_client(service: NotificationsService) -> None:
    if service.context.data_keys is not None:
        await service.context.data_keys.close()


def build(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    signer = session_signer(settings)  # here, so production without a key refuses to start
    require_production_keys(settings.platform, development_keys(settings))

    async def purge(service: NotificationsService) -> None:
        await handlers.purge(service.context, timedelta(days=settings.retention_days))

    def context(service: NotificationsService) -> handlers.Context:
        return build_context(settings, lambda: service.pool, service.domain_metrics, signer)

    spec: ServiceSpec[handlers.Context, NotificationMetrics] = ServiceSpec(
        title="Sinergi — Notifikasi (notifications)",
        description=(
            "Tells citizens and officers what happened to their complaints, permit "
            "applications and appointments: rules and templates per event type and language, "
            "email, SMS and WhatsApp, retries, quiet hours and a delivery log for officers."
        ),
        settings=settings,
        domain_metrics=NotificationMetrics,
        context=context,
        routers=[api.router],
        consumers=[
            ConsumerSpec(
                settings.consumer_group, settings.topics, intake.on_event, batch_handler=intake.on_events
            )
        ],
        jobs=[
            PeriodicJob("delivery", settings.delivery_interval_seconds, _deliver, wake_on=DELIVERY_CHANNEL),
            PeriodicJob("domain-gauges", 5.0, _refresh_gauges),
            PeriodicJob("retention", 3600.0, purge),
        ],
        on_start=_backfill_address_refs,
        on_stop=_close_key_client,
        citizen_export=CitizenMessages(settings.contact_key.get_secret_value()),
    )
    app = create_app(spec)
    # The issuer verifies its own sessions with its own public key, no HTTP round trip.
    app.state.citizen_sessions = CitizenSessions(settings.platform, LocalKeys(signer.jwks()))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per gateway request otherwise
    return app


def development_keys(settings: NotificationsSettings) -> dict[str, tuple[SecretStr, str]]:
    """The keys production refuses at their development value (the kit's
    `require_production_keys`): the contact key (anyone could open the stored addresses
    with it) and the secret of the account that asks for data keys."""
    return {
        "NOTIFICATIONS_CONTACT_KEY": (settings.contact_key, DEV_CONTACT_KEY),
        "NOTIFICATIONS_KEY_READER_CLIENT_SECRET": (settings.key_reader_client_secret, DEV_KEY_READER_SECRET),
    }


def session_signer(settings: NotificationsSettings) -> SessionSigner:
    """What signs citizens' sessions, with the configured key (see `signing_key_pem`)."""
    pem = signing_key_pem(settings.citizen_signing_key, settings.platform)
    return SessionSigner(pem, settings.platform.citizen_issuer)


def build_context(
    settings: NotificationsSettings,
    pool: Callable[[], asyncpg.Pool],
    metrics: NotificationMetrics,
    sessions: SessionSigner | None = None,
) -> handlers.Context:
    tz = ZoneInfo(settings.timezone)
    rulebook = RuleBook(
        settings.rules_file, settings.recipients_file, on_error=lambda _: metrics.rules_errors.inc()
    )
    rulebook.current()
    if rulebook.error and rulebook.loads == 0:
        raise RuntimeError(f"notification rules cannot be loaded: {rulebook.error}")
    token = settings.gateway_token.get_secret_value() if settings.gateway_token else None
    now = time.monotonic()
    rates = {
        "email": (settings.email_rate_per_second, settings.email_burst),
        "sms": (settings.sms_rate_per_second, settings.sms_burst),
        "whatsapp": (settings.whatsapp_rate_per_second, settings.whatsapp_burst),
    }
    return handlers.Context(
        pool=pool,
        platform=settings.platform,
        contact_key=settings.contact_key.get_secret_value(),
        data_keys=DataKeyClient(
            settings.data_key_urls,
            KeyReaderToken(
                settings.platform, settings.key_reader_client_id, settings.key_reader_client_secret
            ),
        ),
        rulebook=rulebook,
        templates=TemplateStore(settings.templates_dir, default_locale=settings.default_locale, tz=tz),
        email=EmailChannel(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                use_tls=settings.smtp_use_tls,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_seconds,
                local_hostname=settings.smtp_local_hostname,
                connections=settings.smtp_connections,
            )
        ),
        gateways={
            "sms": GatewayChannel(
                "sms", GatewayConfig(settings.sms_gateway_url, token, settings.gateway_timeout_seconds)
            ),
            "whatsapp": GatewayChannel(
                "whatsapp",
                GatewayConfig(settings.whatsapp_gateway_url, token, settings.gateway_timeout_seconds),
            ),
        },
        buckets={c: TokenBucket(rate, burst, now) for c, (rate, burst) in rates.items()},
        retry=RetryPolicy(
            max_attempts=settings.max_attempts,
            base_seconds=settings.retry_base_seconds,
            factor=settings.retry_factor,
            cap_seconds=settings.retry_max_seconds,
        ),
        metrics=metrics,
        default_locale=settings.default_locale,
        tz=tz,
        lease=timedelta(seconds=settings.sending_lease_seconds),
        batch_size=settings.delivery_batch,
        region_name=settings.platform.region_name,
        tracking_url=settings.tracking_url,
        booking_url=settings.booking_url,
        delivery_paused=settings.delivery_paused,
        sessions=sessions or session_signer(settings),
        session_minutes=settings.citizen_session_minutes,
        unsolicited_per_hour=settings.unsolicited_per_hour,
    )
