"""The session's broker crashes (SIGKILL) and starts again on the same port; the
producers republish from their outboxes and every consumer ends exactly where it was:
same read models, same notifications, no second email.

On Tansu (memory storage) the restarted broker is empty: every topic, record and
committed offset is gone, and the consumers re-read everything. Apache Kafka restarts
on its data folder: records and offsets survive, and the consumers read only the
republished copies. Either way each republished event is recognised as a duplicate.

Runs LAST in the session (the file name sorts last): on Tansu it empties the session's
broker, and leaves it with every topic of the topology recreated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.kit.consumer import dead_letter_topic
from shared.runtime.embedded import KafkaProtocolBroker, create_topics
from shared.runtime.select import Infrastructure
from shared.runtime.topology import topics
from tests.faults.support import ADMIN, Consumers, Rig, every_domain, metric_sum, sent_per_code
from tests.harness import db_fetch, wait_for

RATE = 3.0  # writes per second per domain


async def snapshot(consumers: Consumers) -> dict[str, Any]:
    """Every row count of both consumers' databases (whole tables, not only our codes)."""
    n = consumers.notifications_db
    i = consumers.integration_db
    counts = {}
    for db, table in (
        (n, "notifications"),
        (n, "notification_history"),
        (n, "inbox"),
        (i, "items"),
        (i, "history"),
        (i, "notifications"),
        (i, "inbox"),
    ):
        counts[f"{'notifications' if db == n else 'integration'}.{table}"] = (
            await db_fetch(db, f"SELECT count(*) AS n FROM {table}")
        )[0]["n"]
    counts["integration.items_by_status"] = sorted(
        (r["status"], r["n"]) for r in await db_fetch(i, "SELECT status, count(*) AS n FROM items GROUP BY 1")
    )
    counts["integration.notifications_by_status"] = sorted(
        (r["status"], r["n"])
        for r in await db_fetch(i, "SELECT status, count(*) AS n FROM notifications GROUP BY 1")
    )
    return counts


async def restarts(consumers: Consumers) -> dict[str, float]:
    """How often the kit's watchdog restarted each consumer (a stalled group member)."""
    return {
        service.name: metric_sum(await service.metrics(), "sinergi_consumer_restarts_total")
        for service in (consumers.notifications[0], consumers.integration[0])
    }


@pytest.fixture
async def crashed_broker(
    infra: Infrastructure, broker_process: KafkaProtocolBroker
) -> AsyncIterator[KafkaProtocolBroker]:
    """The session's broker, for a test that crashes it (Tansu restarts empty); every
    topic of the topology is recreated afterwards, whatever happened, to leave the
    broker whole."""
    yield broker_process
    await create_topics(infra.kafka_bootstrap, topics())


@pytest.mark.timeout(300)
async def test_broker_restart_then_republish_from_outboxes_ends_exactly_as_before(
    rig: Rig, crashed_broker: KafkaProtocolBroker
) -> None:
    infra, producers = rig.infra, rig.producers
    async with rig.consumers() as consumers, rig.citizens(every_domain(RATE)) as citizens:
        # What is republished must be what this test's consumer groups applied: events
        # from after the groups were positioned (taken before this test's first write, on
        # the machine's one clock). Taken before the consumers started, it could include
        # the health service's seed events (its wards) of the session's start, which these
        # groups never saw: republished, they were applied as new, not skipped.
        since = datetime.now(UTC)
        notifications, integration = consumers.notifications[0], consumers.integration[0]
        citizens.start()
        await asyncio.sleep(8)
        await citizens.stop()
        assert citizens.errors() == []
        codes = citizens.all_codes
        before = await rig.tally(consumers, codes)
        assert before.problems() == []

        async def settled() -> dict[str, Any] | None:
            """The consumers' databases once the notification events are applied too."""
            first = await snapshot(consumers)
            await asyncio.sleep(2)
            second = await snapshot(consumers)
            return second if first == second else None

        state = await wait_for(settled, timeout=60)
        outboxes_before = [*producers.all, notifications]

        async def drained() -> bool:
            for service in outboxes_before:
                async with service.client() as client:
                    if (await client.get("/admin/outbox", headers=ADMIN)).json()["pending"]:
                        return False
            return True

        await wait_for(drained, timeout=30)

        # The broker crashes and starts again (Tansu empty); the operator recreates the
        # topics that are missing.
        await asyncio.to_thread(crashed_broker.crash_and_restart)
        await create_topics(
            infra.kafka_bootstrap,
            {
                **topics(),
                dead_letter_topic(consumers.notifications_group): 1,
                dead_letter_topic(consumers.integration_group): 1,
            },
        )
        for service in [*producers.all, *consumers.all]:
            await service.wait_ready()

        # Each producer republishes its retained events: the command for one, the admin
        # endpoint for the others (the notification service republishes its own events).
        marked = {}
        output = await producers.complaints.run_command("republish", "--since", since.isoformat())
        marked["complaints"] = int(output.split()[0])
        for service in (producers.permits, producers.health, notifications):
            async with service.client() as client:
                response = await client.post(
                    "/admin/outbox/republish", json={"since": since.isoformat()}, headers=ADMIN
                )
            assert response.status_code == 200, response.text
            marked[service.name] = response.json()["republishing"]
        assert marked["complaints"] >= len(codes["complaints"])
        assert marked["permits"] >= len(codes["permits"])
        assert marked["health"] >= len(codes["health"])
        assert marked["notifications"] >= 3 * before.writes  # created, sending, delivered
        await wait_for(drained, timeout=60)

        # Both consumers (on Tansu their group offsets lost with the broker, re-reading
        # everything) recognise every event: duplicates skipped, nothing applied.
        domain_events = marked["complaints"] + marked["permits"] + marked["health"]
        expected = {"notifications": domain_events, "integration": domain_events + marked["notifications"]}
        skipped: dict[str, float] = {}

        async def recognised() -> bool:
            skipped["notifications"] = metric_sum(
                await notifications.metrics(),
                "sinergi_inbox_duplicates_skipped_total",
                consumer=consumers.notifications_group,
            )
            skipped["integration"] = metric_sum(
                await integration.metrics(),
                "sinergi_inbox_duplicates_skipped_total",
                consumer=consumers.integration_group,
            )
            return all(skipped[name] >= expected[name] for name in expected)

        try:
            await wait_for(recognised, timeout=90, interval=1.0)
        except TimeoutError:
            raise AssertionError(
                f"duplicates skipped {skipped}, expected at least {expected};"
                f" watchdog restarts {await restarts(consumers)}"
            ) from None
        await asyncio.sleep(3)
        assert await snapshot(consumers) == state
        after = await rig.tally(consumers, codes)
        assert after.problems() == []
        assert sent_per_code(rig.smtp_sink, rig.fake_gateway, after.codes) == before.sent  # no second email
        restarted = await restarts(consumers)

    print(
        f"FIGURES broker-restart: {before.writes} writes ({3 * RATE:.0f}/s for {citizens.duration:.0f} s)"
        f" applied, then the broker crashed and restarted ({crashed_broker.label}); republished from"
        f" the outboxes: {marked}; consumers skipped every republished event as a duplicate; read models and"
        f" notifications identical before and after ({state['integration.items']} view items,"
        f" {state['integration.history']} history rows, {state['integration.notifications']} view"
        f" notifications, {state['notifications.notifications']} notifications), second emails 0;"
        f" consumers restarted by the watchdog: {restarted}; {after.summary()}"
    )
