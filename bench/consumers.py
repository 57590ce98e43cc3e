"""Phase 5, consumers: how fast the integration view and the notification service work
through a pre-loaded topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.baselines import raw_consume
from bench.services import ServiceProcess, consumer_env, fresh_database, inbox_count
from shared.runtime.embedded import create_topics, free_port
from shared.runtime.select import Infrastructure

GROUP_JOIN_S = 5  # about the time a new group takes to be given its partitions here


async def consume(
    infra: Infrastructure,
    name: str,
    topic: str,
    events: int,
    *,
    window: float,
    database_url: str | None = None,
    profile_as: str | None = None,
) -> dict[str, Any]:
    """Start service `name` as a new consumer group on `topic` and measure its rate from
    its first applied batch, over the whole topic or `window` seconds, whichever ends
    first (applied = rows in its inbox)."""
    group = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    await create_topics(infra.kafka_bootstrap, {f"{group}.dlq": 1})
    url = database_url or await fresh_database(infra)
    port = free_port()
    # Up to the channel hand-off: deliveries are held, the notifications stay queued.
    extra = {"NOTIFICATIONS_DELIVERY_PAUSED": "true"} if name == "notifications" else {}
    service = ServiceProcess(
        f"services.{name}",
        {
            **infra.broker_env(),
            **consumer_env(name, group, topic, url, port, extra),
        },
        port,
    )
    stop = asyncio.Event()
    sampler: asyncio.Task[None] | None = None
    try:
        await service.wait_ready()
        sampler = asyncio.create_task(service.sample_rss(stop))
        # From now, not from the first applied batch: a fast consumer is done with the
        # topic before a later window opens, which then holds only idle time (unsampled).
        # The wait for the group's partitions is idle too, so it costs no share.
        sampling = (
            asyncio.create_task(service.profile(profile_as, min(10, window) + GROUP_JOIN_S))
            if profile_as
            else None
        )
        first_at = first_done = None
        first_cpu = 0.0
        deadline = time.monotonic() + 30 + window
        done = 0
        while time.monotonic() < deadline:
            done = await inbox_count(url, group)
            if done and first_at is None:
                first_at, first_done, first_cpu = time.perf_counter(), done, service.cpu_seconds()
            if done >= events or (first_at and time.perf_counter() - first_at > window):
                break
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - first_at if first_at else float("nan")
        rate = (done - (first_done or 0)) / seconds if first_at and seconds > 0 else 0.0
        # The consumer's own CPU time per event: steadier than the rate on a busy machine.
        cpu_us = (
            (service.cpu_seconds() - first_cpu) * 1e6 / max(1, done - (first_done or 0)) if first_at else 0.0
        )
        stop.set()
        await sampler
        result = {
            "applied": done, "seconds": seconds, "per_s": rate, "cpu_us_per_event": cpu_us,
            "rss_mb": service.peak_rss / 2**20,
        }  # fmt: skip
        if sampling is not None:
            await sampling
        return result
    finally:
        stop.set()
        service.stop()


# Events per second each consumer is to apply (notifications: up to the channel hand-off).
CONSUMER_TARGETS = {"integration": 15_000, "notifications": 5_000}


async def consumer_rates(infra: Infrastructure, topic: str, events: int, window: float) -> dict[str, Any]:
    """How fast the integration view (a rebuild from the topic) and the notification
    service (up to the channel hand-off: notifications created) work through `events`
    pre-loaded events."""
    # The same topic read raw in the same run: what each consumer's rate is a share of.
    raw = await raw_consume(infra.kafka_bootstrap, topic, events)
    results: dict[str, Any] = {"events": events, "raw_per_s": raw["per_s"]}
    print(f"  raw consume: {raw['per_s']:,.0f} events/s", flush=True)
    for name in ("integration", "notifications"):
        results[name] = await consume(
            infra, name, topic, events, window=window, profile_as=f"consumer-{name}"
        )
        results[name]["ratio_to_raw_consume"] = results[name]["per_s"] / raw["per_s"]
        print(
            f"  {name}: {results[name]['per_s']:,.0f} events/s ({results[name]['applied']} applied, "
            f"{results[name]['ratio_to_raw_consume']:.3f} of raw consume, "
            f"{results[name]['cpu_us_per_event']:.0f} µs CPU per event)",
            flush=True,
        )
    return results
