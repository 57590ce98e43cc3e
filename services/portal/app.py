"""Assembles the citizens' portal from the kit: settings, the upstream clients, pages,
the draft-expiry job, its own error pages. It publishes and consumes no events (the
kit's `events=False`): its database holds drafts of forms only."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import Counter
from pydantic import Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal import antrean, handlers, izin, klinik, layanan, operasi, pages, petugas, petugas_cases
from services.portal.clients.base import CITIZEN_ADDRESS, Limited, Unavailable
from services.portal.clients.complaints import ComplaintsClient
from services.portal.clients.health import HealthClient
from services.portal.clients.identity import IdentityProvider
from services.portal.clients.integration import IntegrationClient
from services.portal.clients.notifications import NotificationsClient
from services.portal.clients.permits import PermitsClient
from services.portal.clients.tiles import TileServer
from services.portal.i18n import translator
from services.portal.petugas_rules import SessionPolicy
from services.portal.web import CsrfRefused, PortalEdge, language, message_page, render, secured
from shared.kit.app import PeriodicJob, Service, ServiceSpec, create_app, service_settings
from shared.kit.auth import MAX_TOKEN_HOURS
from shared.kit.clock import utc_now
from shared.kit.http import UNAVAILABLE_ERRORS, UNAVAILABLE_RETRY_AFTER_SECONDS, log_unavailable
from shared.kit.limits import client_address
from shared.kit.metrics import DomainMetrics, Metric
from shared.kit.settings import DEV_OIDC_CLIENT_SECRET, require_production_keys
from shared.runtime.topology import port_of

log = logging.getLogger(__name__)

DEV_PORTAL_SECRET = "sinergi-portal-development-secret-change-me"
# When a citizen who met a service away may try again (the 503 page's Retry-After).
RETRY_AFTER_SECONDS = 30


def _local(service: str) -> str:
    return f"http://127.0.0.1:{port_of(service)}"


class PortalSettings(service_settings("portal")):
    complaints_url: str = _local("complaints")
    permits_url: str = _local("permits")
    health_url: str = _local("health")
    notifications_url: str = _local("notifications")
    integration_url: str = _local("integration")
    upstream_timeout_seconds: float = 5.0
    # Signs the CSRF tokens; set PORTAL_SECRET_KEY in production.
    secret_key: SecretStr = SecretStr(DEV_PORTAL_SECRET)
    # How long a draft waits for its next page (a citizen reading, fetching their identity
    # card); a draft idle longer is deleted.
    draft_idle_minutes: int = 120
    draft_purge_seconds: float = 300.0
    # The regency's map tile server, {z}/{x}/{y} in Web Mercator (OpenStreetMap's scheme),
    # e.g. http://tiles.purworejokab.go.id/{z}/{x}/{y}.png: with it, the desa page shows a
    # map to mark the place on (the portal passes the regency's tiles on); without it, no
    # map, and the report goes with its desa and, if the citizen allows, the phone's position.
    map_tiles_url: str = ""
    # The officers' workspace (/petugas): the portal's address as officers' browsers reach
    # it (the identity provider sends them back to <public_url>/petugas/masuk/kembali),
    # its client at the provider (SINERGI_OIDC_ISSUER), and when a session ends: after
    # `officer_idle_minutes` without a page, `officer_session_hours` after signing in.
    public_url: str = f"http://127.0.0.1:{port_of('portal')}"
    oidc_client_id: str = "sinergi-petugas"
    oidc_client_secret: SecretStr = SecretStr(DEV_OIDC_CLIENT_SECRET)
    officer_idle_minutes: int = Field(30, ge=1, le=8 * 60)
    officer_session_hours: float = Field(8.0, gt=0, le=MAX_TOKEN_HOURS)


class PortalMetrics(DomainMetrics):
    unavailable: Counter = Metric.counter(
        "sinergi_portal_upstream_unavailable_total", "Pages that found a service away", ["upstream"]
    )


PortalService = Service[handlers.Context, PortalMetrics]


async def _purge_drafts(service: PortalService) -> None:
    await handlers.purge_idle_drafts(service.context)


async def _end_officer_sessions(service: PortalService) -> None:
    await petugas_cases.purge_ended_sessions(service.context)


async def _close_clients(service: PortalService) -> None:
    for upstream in service.context.upstreams:
        await upstream.close()
    if service.context.tiles is not None:
        await service.context.tiles.close()


def build(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    production = settings.platform.environment == "production"
    require_production_keys(
        settings.platform,
        {
            "PORTAL_SECRET_KEY": (settings.secret_key, DEV_PORTAL_SECRET),
            "PORTAL_OIDC_CLIENT_SECRET": (settings.oidc_client_secret, DEV_OIDC_CLIENT_SECRET),
        },
    )
    timeout = settings.upstream_timeout_seconds

    def context(service: PortalService) -> handlers.Context:
        return handlers.Context(
            pool=lambda: service.pool,
            complaints=ComplaintsClient(settings.complaints_url, timeout),
            permits=PermitsClient(settings.permits_url, timeout),
            health=HealthClient(settings.health_url, timeout),
            clock=utc_now,
            draft_idle=timedelta(minutes=settings.draft_idle_minutes),
            notifications=NotificationsClient(settings.notifications_url, timeout),
            integration=IntegrationClient(settings.integration_url, timeout),
            tiles=TileServer(settings.map_tiles_url, timeout) if settings.map_tiles_url else None,
            officers=_officers(settings, service),
            citizen_key=settings.platform.citizen_ref_key.get_secret_value(),
        )

    spec: ServiceSpec[handlers.Context, PortalMetrics] = ServiceSpec(
        title="Sinergi — Portal warga (citizens' portal)",
        description="Server-rendered pages for citizens over the services' APIs.",
        settings=settings,
        domain_metrics=PortalMetrics,
        context=context,
        routers=[
            pages.router,
            izin.router,
            antrean.router,
            layanan.router,
            petugas.router,
            operasi.router,
            klinik.router,
        ],
        jobs=[
            PeriodicJob("draft-expiry", settings.draft_purge_seconds, _purge_drafts),
            PeriodicJob("officer-session-expiry", settings.draft_purge_seconds, _end_officer_sessions),
        ],
        on_stop=_close_clients,
        static=Path(__file__).parent / "static",
        streams=[klinik.DISPLAY_STREAM],
        events=False,
    )
    app = create_app(spec)
    app.add_middleware(
        PortalEdge, secret=settings.secret_key.get_secret_value().encode(), secure_cookies=production
    )
    trusted = settings.platform.trusted_proxies

    @app.middleware("http")
    async def _citizen_address(request: Request, call_next: Any) -> Response:
        """Name the citizen, not the portal, to the services' abuse limits."""
        CITIZEN_ADDRESS.set(client_address(request, trusted))
        return await call_next(request)

    _error_pages(app)
    petugas.error_pages(app)
    return app


def _officers(settings: PortalSettings, service: PortalService) -> handlers.OfficerAccess:
    """How officers sign in: the identity provider when there is one (always in
    production: the kit refuses to start without it), else the development sign-in with
    the kit's development tokens."""
    platform = settings.platform
    public_url = settings.public_url.rstrip("/")
    provider = None
    if platform.oidc_issuer:
        provider = IdentityProvider(
            issuer=platform.oidc_issuer,
            discovery=platform.oidc_discovery_url,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            redirect_uri=f"{public_url}/petugas/masuk/kembali",
            timeout=settings.upstream_timeout_seconds,
        )
    development = provider is None and platform.environment != "production"
    return handlers.OfficerAccess(
        provider=provider,
        tokens=service.tokens,
        policy=SessionPolicy(
            idle=timedelta(minutes=settings.officer_idle_minutes),
            lifetime=timedelta(hours=settings.officer_session_hours),
        ),
        public_url=public_url,
        development_secret=platform.auth_secret.get_secret_value() if development else None,
    )


def _error_pages(app: FastAPI) -> None:
    """Citizens get pages, not JSON: a friendly 503 naming the service that is away (the
    other journeys keep working), 403 for a form without its token, 404."""

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> HTMLResponse:
        app.state.service.domain_metrics.unavailable.labels(exc.service).inc()
        body = (f"unavailable.{exc.service}", "unavailable.kept", "unavailable.other")
        response = message_page(request, 503, "unavailable.title", *body)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(Limited)
    async def _limited(request: Request, exc: Limited) -> HTMLResponse:
        """A service's abuse limit: when to try again, in minutes, and its Retry-After."""
        t = translator(language(request))
        minutes = max(1, math.ceil(exc.retry_after / 60))
        response = render(
            request,
            "message.html",
            429,
            title=t("limited.title"),
            paragraphs=[t("limited.body", minutes=minutes)],
            errors={},
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(CsrfRefused)
    async def _forbidden(request: Request, _: CsrfRefused) -> HTMLResponse:
        return message_page(request, 403, "forbidden.title", "forbidden.body")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return message_page(request, exc.status_code, "notfound.title", "notfound.body")

    async def _away(request: Request, exc: Exception) -> HTMLResponse:
        """The portal's own database (drafts, sessions) is away: the kit's 503, as a page."""
        log_unavailable(exc)
        response = message_page(request, 503, "trouble.away.title", "trouble.away.body")
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
        return response

    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _away)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, _: Exception) -> Response:
        """A fault of ours (or an answer no service should give): a page saying so in
        plain words, never a trace; the log has it."""
        log.exception("unhandled error")
        # Answered outside the edge middleware (Starlette's last resort): its headers here.
        return secured(message_page(request, 500, "trouble.title", "trouble.body", "unavailable.kept"))
