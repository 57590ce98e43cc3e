"""The app factory: every service is a `ServiceSpec` turned into a FastAPI app.

The lifespan runs migrations, opens the pool, starts the broker connection in the
background, the outbox relay, the service's consumers and periodic jobs; on shutdown
(SIGTERM: uvicorn first stops accepting and finishes in-flight requests) it stops the
jobs, lets FastStream finish in-flight handlers and commit, then closes the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.kit import admin, citizen_data, data_keys, limits
from shared.kit.admission import Admission
from shared.kit.attachments import MAX_UPLOAD_REQUEST_BYTES
from shared.kit.auth import OidcTokens, TokenVerifier, token_verifier
from shared.kit.bus import EventBus
from shared.kit.citizen_data import CitizenData, CitizenExport
from shared.kit.consumer import IdempotentConsumer
from shared.kit.data_keys import DEV_MASTER_KEY, DataKeys, require_production_master_key
from shared.kit.db import connect, create_pool, migrate
from shared.kit.http import HttpEdge, install_error_handlers
from shared.kit.logs import configure_logging
from shared.kit.metrics import KitMetrics, build_info
from shared.kit.outbox import OutboxRelay
from shared.kit.settings import ServiceSettings, require_production_keys
from shared.kit.tracing import configure_tracing, shutdown_tracing
from shared.kit.uow import EventSource
from shared.kit.usecase import UseCaseContext
from shared.kit.watchdog import CHECK_SECONDS, ConsumerWatchdog
from shared.runtime.topology import SERVICES, ServiceInfo
from shared.schemas import ParsedEvent

log = logging.getLogger(__name__)
GC_THRESHOLD = 20_000  # allocations before a young-generation collection (CPython: 700)

C = TypeVar("C")  # a service's use-case context: what its handlers need (pool, clock, rules)
M = TypeVar("M")  # a service's domain metrics, registered on the kit's registry


@dataclass(frozen=True)
class ConsumerSpec(Generic[C]):
    """A consumer group of the service. Its handlers take the service's context first."""

    name: str
    topics: Sequence[str]
    handler: Callable[[C, asyncpg.Connection, ParsedEvent], Awaitable[Any]]
    # True for read models: unknown event types are counted and skipped, not dead-lettered.
    skip_unknown_types: bool = False
    # Optional set-based form of `handler` for whole batches (see IdempotentConsumer).
    batch_handler: Callable[[C, asyncpg.Connection, Sequence[ParsedEvent]], Awaitable[Any]] | None = None


@dataclass(frozen=True)
class PeriodicJob(Generic[C, M]):
    """A job run every `interval` seconds on every instance (make it safe to run
    concurrently, e.g. with FOR UPDATE SKIP LOCKED). With `wake_on`, a PostgreSQL
    NOTIFY on that channel (e.g. from a trigger when work is inserted) runs it at once
    instead of at the next interval."""

    name: str
    interval: float
    run: Callable[[Service[C, M]], Awaitable[Any]]
    wake_on: str | None = None


@dataclass
class ServiceSpec(Generic[C, M]):
    """Everything a service declares, in one place: the kit builds the app from it. Its
    name comes with its settings (`service_settings(name)`), its migrations are the
    `migrations` folder of its package, and where its own events go is its use-case
    context's `origin` (domain services)."""

    title: str
    description: str
    settings: ServiceSettings
    # The service's domain metrics (its `DomainMetrics` class), made on the kit's registry.
    domain_metrics: Callable[[KitMetrics], M]
    # Builds the use-case context once the service exists (the pool opens later: read it
    # through `service.pool` when used, not when built).
    context: Callable[[Service[C, M]], C]
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec[C]] = ()
    jobs: Sequence[PeriodicJob[C, M]] = ()
    # Run once after migrations, before the first request (e.g. loading seed data), and
    # once at shutdown after the jobs and consumers have stopped.
    on_start: Callable[[Service[C, M]], Awaitable[None]] | None = None
    on_stop: Callable[[Service[C, M]], Awaitable[None]] | None = None
    # What the service holds about a citizen (enables the export and erasure endpoints).
    citizen_data: CitizenData | None = None
    # What a consumer of the domain events holds about a citizen, which it erases when the
    # domain service announces an erasure (enables the export endpoints only).
    citizen_export: CitizenExport | None = None
    version: str = field(default_factory=lambda: build_info()["version"])
    openapi_tags: list[dict[str, str]] = field(default_factory=list)
    # A folder of the pages' own scripts, style sheets and images, served at /static.
    static: Path | None = None
    # Long-lived streams (a live feed) that admission control lets through: each would
    # otherwise hold a place of the in-flight limit for as long as it is open.
    streams: Sequence[str] = ()
    # False for a service that neither publishes nor consumes events (the citizens'
    # portal): no broker connection, no outbox relay, and /ready asks the database only.
    events: bool = True

    @property
    def name(self) -> str:
        if self.settings.service is None:
            raise ValueError("a service's settings class derives from service_settings(name)")
        return self.settings.service

    @property
    def migrations(self) -> Path:
        """The service's numbered SQL migrations, in its package."""
        module = _service_info(self.name).module
        package = importlib.util.find_spec(module)
        if package is None or not package.submodule_search_locations:
            raise ValueError(f"{module} is not a package")
        return Path(package.submodule_search_locations[0]) / "migrations"


def _service_info(name: str) -> ServiceInfo:
    info = next((s for s in SERVICES if s.name == name), None)
    if info is None:
        raise ValueError(f"{name!r} is not a service of shared/runtime/topology.py")
    return info


@cache
def service_settings(name: str, *, citizen_keys: bool = False) -> type[ServiceSettings]:
    """The settings base of the service `name`: its own variables are ``<NAME>_*``, its
    port defaults to the one shared/runtime/topology.py gives it and its database to the
    one of its name on a local PostgreSQL (development). It lives here, not in
    settings.py, because the domains reach settings.py and must not reach the runtime.
    `citizen_keys`: the service keeps citizens' data keys (shared/kit/data_keys.py),
    wrapped under its own ``<NAME>_MASTER_KEY``."""
    info = _service_info(name)

    class Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=f"{name.upper()}_", extra="ignore")
        service = name
        port: int = info.port
        database_url: str = f"postgresql://postgres@127.0.0.1:5432/{info.database}"

    if not citizen_keys:
        return Settings

    class KeyedSettings(Settings):
        master_key: SecretStr = SecretStr(DEV_MASTER_KEY)

    return KeyedSettings


class Service(Generic[C, M]):
    """What a running service holds; reachable from routes as `request.app.state.service`."""

    def __init__(self, spec: ServiceSpec[C, M]) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = spec.settings
        self.metrics = KitMetrics(spec.name)
        self.domain_metrics: M = spec.domain_metrics(self.metrics)
        self.bus = EventBus(
            spec.settings.platform, client_id=f"sinergi-{spec.name}", registry=self.metrics.registry
        )
        self._pool: asyncpg.Pool | None = None
        self.relay = OutboxRelay(spec.settings.database_url, self.bus, spec.settings.platform, self.metrics)
        self.tokens: TokenVerifier = token_verifier(spec.settings.platform)
        self.context: C = spec.context(self)
        self.consumers = [
            IdempotentConsumer(
                c.name,
                c.topics,
                partial(c.handler, self.context),
                pool=lambda: self.pool,
                bus=self.bus,
                settings=spec.settings.platform,
                metrics=self.metrics,
                skip_unknown_types=c.skip_unknown_types,
                batch_handler=partial(c.batch_handler, self.context) if c.batch_handler else None,
            )
            for c in spec.consumers
        ]
        self.watchdog = ConsumerWatchdog(self.consumers, spec.settings.platform, self.metrics, self.bus.ping)
        self._tasks: list[asyncio.Task[Any]] = []
        self._relay_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Set by `serve`: lets long-lived responses (live streams) end when shutdown begins.
        self.server: Any = None

    @property
    def shutting_down(self) -> bool:
        """Whether shutdown has begun (the server stops taking work, or the service stops)."""
        return self._stopping.is_set() or bool(getattr(self.server, "should_exit", False))

    @property
    def data_keys(self) -> DataKeys | None:
        """The citizens' data keys the service keeps (the domain services')."""
        source = self.event_source
        return source.keys if source is not None else None

    @property
    def event_source(self) -> EventSource | None:
        """Where the service's own events go: its use-case context's `origin` (the
        domain services'); None for a service whose context publishes nothing of it."""
        return self.context.origin if isinstance(self.context, UseCaseContext) else None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool not open yet")
        return self._pool

    async def open_database(self) -> None:
        """Apply migrations and open the pool, waiting for the database if needed."""
        url = self.settings.database_url
        await _retry("database", lambda: migrate(url, self.spec.migrations))
        self._pool = await _retry(
            "database",
            lambda: create_pool(
                url,
                min_size=self.settings.db_pool_min,
                max_size=self.settings.db_pool_max,
                observe_wait=self.metrics.pool_acquire_wait.observe,
            ),
        )
        self.metrics.watch_pool(self._pool)

    async def start(self) -> None:
        if isinstance(self.tokens, OidcTokens):
            await self.tokens.start()
        await self.open_database()
        if self.spec.on_start is not None:
            await self.spec.on_start(self)
        if self.spec.events:
            self.bus.start_in_background()
            self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
        for job in (*self.spec.jobs, *KIT_JOBS):
            self._tasks.append(asyncio.create_task(self._every(job), name=f"job-{job.name}"))
        log.info("service started", extra={"service": self.name})

    async def stop(self) -> None:
        self._stopping.set()
        # Let the relay finish the batch in hand and mark it published, so a restart
        # does not publish it again.
        self.relay.stop()
        if self._relay_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._relay_task, 20)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        await self.bus.stop()
        await self.watchdog.close()
        await self.tokens.close()
        if self.spec.on_stop is not None:
            with contextlib.suppress(Exception):
                await self.spec.on_stop(self)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 10)
        await asyncio.to_thread(shutdown_tracing)
        log.info("service stopped", extra={"service": self.name})

    async def _every(self, job: PeriodicJob) -> None:
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(job.wake_on, wake)) if job.wake_on else None
        try:
            while not self._stopping.is_set():
                wake.clear()
                try:
                    await job.run(self)
                except Exception as exc:
                    log.warning("periodic job failed", extra={"job": job.name, "error": repr(exc)[:300]})
                stop = asyncio.create_task(self._stopping.wait())
                woken = asyncio.create_task(wake.wait())
                await asyncio.wait({stop, woken}, timeout=job.interval, return_when=asyncio.FIRST_COMPLETED)
                for task in (stop, woken):
                    task.cancel()
        finally:
            if listener is not None:
                listener.cancel()

    async def _listen(self, channel: str, wake: asyncio.Event) -> None:
        """Keep a LISTEN connection open (reconnecting) that sets `wake` on NOTIFY."""
        while not self._stopping.is_set():
            conn = None
            try:
                conn = await connect(self.settings.database_url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(channel, lambda *_: wake.set())
                wake.set()  # work may have arrived while not listening
                stop = asyncio.create_task(self._stopping.wait())
                gone = asyncio.create_task(lost.wait())
                await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
                for task in (stop, gone):
                    task.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "listener lost its connection", extra={"channel": channel, "error": str(exc)[:200]}
                )
                await asyncio.sleep(1)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        # asyncpg's own timeouts, not task cancellation: a cancelled query can leave a
        # pooled connection mid-operation.
        try:
            await self.pool.fetchval("SELECT 1", timeout=2)
            checks["database"] = "up"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        # Officers' sign-in; citizens are served without it, so it does not gate readiness.
        checks["identity"] = self.tokens.state()
        if self.spec.events:
            checks["broker"] = "up" if await self.bus.ping(timeout=2) else "down"
            try:
                checks["outbox_pending"] = await self.pool.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL", timeout=2
                )
            except Exception:
                checks["outbox_pending"] = None
        if self.consumers:
            # Informational, like the outbox: the watchdog restarts a stalled consumer,
            # and the HTTP API this answer gates does not depend on it.
            checks["stalled_consumers"] = sorted(self.watchdog.stalled_groups)
        for dependency in self.dependencies:
            self.metrics.ready.labels(dependency).set(1 if checks[dependency] == "up" else 0)
        return checks

    @property
    def dependencies(self) -> tuple[str, ...]:
        """What must answer for the service to be ready."""
        return ("database", "broker") if self.spec.events else ("database",)


# Jobs every service runs: expired rate-limit rows (shared/kit/limits.py) go.
KIT_JOBS: tuple[PeriodicJob[Any, Any], ...] = (
    PeriodicJob("rate-limit-prune", 300.0, lambda service: limits.prune(service.pool)),
    PeriodicJob("consumer-watchdog", CHECK_SECONDS, lambda service: service.watchdog.check()),
)


async def _retry(what: str, action: Callable[[], Awaitable[Any]], attempts: int = 30) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return await action()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            if attempt == attempts:
                raise
            log.warning(f"{what} not reachable, retrying", extra={"error": str(exc)[:200]})
            await asyncio.sleep(min(attempt, 5))
    raise AssertionError("unreachable")


def _write_openapi_hourly(app: FastAPI) -> None:
    """FastAPI writes the OpenAPI document once and keeps it; request examples that name
    a day (a booking's date) must not go stale in a service that runs for weeks, so the
    document is written afresh each hour (in whatever time zone the day turns)."""
    written_in: list[int] = []

    def openapi() -> dict[str, Any]:
        hour = int(time.time() // 3600)
        if written_in != [hour]:
            app.openapi_schema = None
            written_in[:] = [hour]
        return FastAPI.openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(spec: ServiceSpec[C, M]) -> FastAPI:
    configure_logging(spec.name, spec.settings.platform.log_level)
    configure_tracing(spec.name, spec.settings.platform)
    require_production_keys(spec.settings.platform)
    require_production_master_key(spec.settings)
    service = Service(spec)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
    )
    app.state.service = service
    app.state.settings = spec.settings
    _write_openapi_hourly(app)
    install_error_handlers(app)
    platform = spec.settings.platform
    app.add_middleware(
        HttpEdge,
        metrics=service.metrics,
        max_body=spec.settings.platform.max_request_bytes,
        max_upload=MAX_UPLOAD_REQUEST_BYTES,
    )
    # Added last, so it runs outside the edge: a refusal costs no correlation id, route
    # metrics or body limit, only its own counter (shared/kit/admission.py).
    app.add_middleware(
        Admission,
        limit=platform.max_in_flight,
        floor=min(platform.min_in_flight, platform.max_in_flight),
        budget=platform.admission_budget_seconds,
        interval=platform.admission_interval_seconds,
        retry_after=platform.busy_retry_after_seconds,
        refused=service.metrics.http_refused_busy,
        exempt=spec.streams,
    )

    @app.get("/health", tags=["operations"], summary="Liveness: the process answers")
    async def health() -> dict[str, str | int]:
        return {"status": "ok", "service": spec.name, "pid": os.getpid()}

    @app.get("/ready", tags=["operations"], summary="Readiness: database and broker answer")
    async def ready() -> JSONResponse:
        checks = await service.readiness()
        ok = all(checks[dependency] == "up" for dependency in service.dependencies)
        body = {"status": "ready" if ok else "degraded", "service": spec.name, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in spec.routers:
        app.include_router(router)
    if spec.static is not None:
        app.mount("/static", StaticFiles(directory=spec.static), name="static")
    if spec.events:  # the operator's outbox, dead letters and audit belong to event services
        app.include_router(admin.router)
    if spec.citizen_data is not None and spec.citizen_export is not None:
        raise ValueError(f"{spec.name}: citizen_data already exports; give one of the two")
    if spec.citizen_data is not None:
        if service.event_source is None:
            raise ValueError(f"{spec.name}: citizen_data needs a use-case context that publishes erasures")
        app.include_router(citizen_data.erase_router)
    if spec.citizen_data is not None or spec.citizen_export is not None:
        app.include_router(citizen_data.router)
        app.include_router(citizen_data.citizen_router)
    if service.data_keys is not None:
        app.include_router(data_keys.router)
    return app


def service_of(request: Request) -> Service[Any, Any]:
    return request.app.state.service


def context_dependency(kind: type[C]) -> Callable[[Request], Awaitable[C]]:
    """A FastAPI dependency giving a route the service's use-case context, checked to be
    `kind`: `Ctx = Annotated[Context, Depends(context_dependency(Context))]`."""

    async def dependency(request: Request) -> C:  # async: FastAPI runs sync ones in a thread
        context = request.app.state.service.context
        if not isinstance(context, kind):
            raise TypeError(f"this service's context is {type(context).__name__}, not {kind.__name__}")
        return context

    return dependency


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run under uvicorn. On SIGTERM uvicorn stops accepting, finishes in-flight
    requests (up to the grace period), then runs the lifespan shutdown above."""
    import uvicorn

    # Event parsing allocates many short-lived objects; the cyclic collector ran often
    # and kept walking the long-lived ones (modules, catalogues, templates), a third of
    # a consumer's parsing time. Those are moved out of its sight, and it runs less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        root_path=settings.root_path,
        log_config=None,
        access_log=False,
        # The client's address is the kit's to find (SINERGI_TRUSTED_PROXIES, limits.py).
        proxy_headers=False,
        timeout_graceful_shutdown=20,
        # Connections uvicorn holds at all; what is handled at once is admission
        # control's (SINERGI_MAX_IN_FLIGHT, shared/kit/admission.py), far below.
        limit_concurrency=2000,
    )
    server = uvicorn.Server(config)
    app.state.service.server = server
    server.run()
