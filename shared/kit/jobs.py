"""Bodies of the periodic jobs the domain services share (`PeriodicJob.run`): a watcher
that counts the events it emitted, and the recount of a domain gauge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from shared.kit.app import Service
from shared.kit.metrics import set_gauge

C = TypeVar("C")  # the service's use-case context
M = TypeVar("M")  # the service's domain metrics

Job = Callable[[Service[C, M]], Awaitable[None]]


def counting(watch: Callable[[C], Awaitable[int]], counter: Callable[[M], Counter]) -> Job[C, M]:
    """Run the use case `watch` (a watcher: SLA deadlines, expiries, no-shows), which
    returns how many events it emitted, and add them to the domain counter that `counter`
    picks from the service's metrics (e.g. `lambda m: m.watcher_events.labels("sla")`)."""

    async def run(service: Service[C, M]) -> None:
        emitted = await watch(service.context)
        if emitted:
            counter(service.domain_metrics).inc(emitted)

    return run


def recounting(
    count: Callable[[C], Awaitable[Iterable[Sequence[Any]]]], gauge: Callable[[M], Gauge]
) -> Job[C, M]:
    """Set the domain gauge that `gauge` picks from the service's metrics to the rows the
    use case `count` reads (label values, then the value; see `set_gauge`)."""

    async def run(service: Service[C, M]) -> None:
        set_gauge(gauge(service.domain_metrics), await count(service.context))

    return run


async def purge_attachments(service: Service[Any, Any]) -> None:
    """Delete the bytes of erased attachments and of uploads no case claimed in time
    (shared/kit/attachments.py `purge`): the job of every service that keeps some."""
    await service.context.attachments.purge()
