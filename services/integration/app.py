"""Assembles the integration view from the kit: settings, the consumer of every domain
topic, pages, JSON API, live feed, gauges."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI
from prometheus_client import Gauge
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from services.integration import api, handlers, pages
from services.integration.feed import FeedHub
from services.integration.masterplan import DEFAULT_PATH, load_masterplan
from services.integration.repository import CitizenTimeline
from shared.kit.app import ConsumerSpec, PeriodicJob, Service, ServiceSpec, create_app, service_settings
from shared.kit.data_keys import TEXT_KEYS_PATH, TEXT_READER, DataKeyClient, KeyReaderToken
from shared.kit.metrics import DomainMetrics, KitMetrics, Metric
from shared.kit.settings import DEV_TEXT_READER_SECRET, require_production_keys
from shared.kit.web import SecurityHeaders
from shared.runtime.topology import port_of
from shared.schemas import DOMAIN_TOPICS, ParsedEvent

NAME = "integration"
# The services whose events carry what citizens wrote, sealed with their text keys.
TEXT_KEY_HOLDERS = ("complaints",)


class IntegrationSettings(service_settings(NAME)):
    topics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DOMAIN_TOPICS),
        description="Topics to consume (comma-separated in the environment)",
    )
    consumer_group: str = Field(
        NAME, description="Consumer group and inbox name; its dead letters go to <group>.dlq"
    )
    masterplan_path: Path = DEFAULT_PATH
    feed_poll_seconds: float = 1.0
    stream_max_seconds: float = Field(300.0, description="An SSE stream ends after this; browsers reconnect")
    gauge_seconds: float = 15.0
    # Where the producers answer for the text keys of what citizens wrote (JSON object,
    # service name -> base URL), and this service's account at the identity provider
    # (client credentials; its service account has the role `text_reader`, which opens
    # no contact).
    text_key_urls: dict[str, str] = Field(
        default_factory=lambda: {name: f"http://127.0.0.1:{port_of(name)}" for name in TEXT_KEY_HOLDERS}
    )
    text_reader_client_id: str = "sinergi-integration"
    text_reader_client_secret: SecretStr = SecretStr(DEV_TEXT_READER_SECRET)

    @field_validator("topics", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value


class IntegrationMetrics(DomainMetrics):
    open_items: Gauge = Metric.gauge(
        "sinergi_integration_open_items", "Open items in the view per domain", ["domain"]
    )
    last_event_age: Gauge = Metric.gauge(
        "sinergi_integration_last_event_age_seconds",
        "Age of the newest event applied to the view (event time)",
    )
    listeners: Gauge = Metric.gauge("sinergi_integration_live_listeners", "Open live-feed streams")


IntegrationService = Service[handlers.Context, IntegrationMetrics]


async def _apply_event(ctx: handlers.Context, conn: asyncpg.Connection, event: ParsedEvent) -> None:
    await handlers.apply_event(conn, event, ctx.text_keys)


async def _apply_events(
    ctx: handlers.Context, conn: asyncpg.Connection, events: Sequence[ParsedEvent]
) -> None:
    await handlers.apply_events(conn, events, ctx.text_keys)


def build(settings: IntegrationSettings | None = None) -> FastAPI:
    settings = settings or IntegrationSettings()
    masterplan = load_masterplan(settings.masterplan_path)  # refuses to start on a broken file
    require_production_keys(
        settings.platform,
        {
            "INTEGRATION_TEXT_READER_CLIENT_SECRET": (
                settings.text_reader_client_secret,
                DEV_TEXT_READER_SECRET,
            )
        },
    )

    def context(service: IntegrationService) -> handlers.Context:
        def pool() -> asyncpg.Pool:
            return service.pool

        text_keys = DataKeyClient(
            settings.text_key_urls,
            KeyReaderToken(
                settings.platform,
                settings.text_reader_client_id,
                settings.text_reader_client_secret,
                role=TEXT_READER,
            ),
            path=TEXT_KEYS_PATH,
        )
        return handlers.Context(
            pool=pool,
            masterplan=masterplan,
            citizen_ref_key=settings.platform.citizen_ref_key.get_secret_value(),
            consumer=lambda: service.consumers[0],
            lag=lambda: consumer_lag(service.metrics),
            feed=FeedHub(pool, poll_seconds=settings.feed_poll_seconds, text_keys=text_keys),
            text_keys=text_keys,
        )

    async def close_feed(service: IntegrationService) -> None:
        await service.context.feed.close()
        if service.context.text_keys is not None:
            await service.context.text_keys.close()

    spec: ServiceSpec[handlers.Context, IntegrationMetrics] = ServiceSpec(
        title="Sinergi — Integration view",
        description=(
            "One picture of the regency's services, built only from the events on the domain "
            "topics: item status and history by tracking/booking code, citizen timelines by "
            "pseudonymous reference, SLA compliance per OPD, counts per kecamatan and desa, and "
            "smart-city indicators against the masterplan's targets, and a citizen's own services "
            "(`/citizen/services`, with a citizen session). Pages: `/` (dashboard), "
            "`/lacak` (tracking), `/petugas` (officers); live feed at `/events/stream`."
        ),
        settings=settings,
        domain_metrics=IntegrationMetrics,
        context=context,
        routers=[api.router, pages.router],
        streams=[api.STREAM_PATH],
        consumers=[
            # A read model: event types it does not know yet are counted and skipped.
            ConsumerSpec(
                settings.consumer_group,
                settings.topics,
                _apply_event,
                skip_unknown_types=True,
                batch_handler=_apply_events,
            )
        ],
        jobs=[PeriodicJob("gauges", settings.gauge_seconds, _refresh_gauges)],
        on_stop=close_feed,
        citizen_export=CitizenTimeline(),
        static=Path(__file__).with_name("static"),
        openapi_tags=[
            {"name": "view", "description": "Dashboard data: indicators, OPDs, regions"},
            {
                "name": "citizen",
                "description": "Public tracking by code; a citizen's own services (citizen session)",
            },
            {"name": "officer", "description": "Citizen timelines (bearer token, coordinator or admin)"},
            {"name": "live", "description": "Latest events and the Server-Sent Events stream"},
            {"name": "operations", "description": "Health, readiness, metrics, rebuild"},
        ],
    )
    app = create_app(spec)
    app.add_middleware(SecurityHeaders)  # pages, the live feed and the API alike
    return app


async def _refresh_gauges(service: IntegrationService) -> None:
    ctx = service.context
    metrics = service.domain_metrics
    open_items, last_at = await handlers.gauges(ctx)
    for domain in ("complaints", "permits", "health"):
        metrics.open_items.labels(domain).set(open_items.get(domain, 0))
    metrics.listeners.set(ctx.feed.listeners if ctx.feed else 0)
    if last_at is not None:
        metrics.last_event_age.set(max(0.0, (ctx.clock() - last_at).total_seconds()))


def consumer_lag(metrics: KitMetrics) -> dict[str, int]:
    """Events on each topic not yet applied, from the kit's lag gauge (per partition)."""
    lag: dict[str, int] = {}
    for metric in metrics.consumer_lag.collect():
        for sample in metric.samples:
            topic = sample.labels["topic"]
            lag[topic] = lag.get(topic, 0) + int(sample.value)
    return dict(sorted(lag.items()))
