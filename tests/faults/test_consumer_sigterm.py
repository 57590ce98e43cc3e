"""SIGTERM to the notification service under load while one of its batches is in flight:
it waits for the batch, commits it (effects and offsets), exits within its grace period;
after a restart nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.faults.support import Rig, batch_held, every_domain, metric_sum
from tests.harness import db_fetch

RATE = 5.0  # writes per second per domain
HOLD_AFTER_SIGTERM = 2.0  # the in-flight batch is still running this long after SIGTERM


@pytest.mark.timeout(300)
async def test_sigterm_on_the_notification_service_under_load(rig: Rig) -> None:
    async with rig.consumers() as consumers, rig.citizens(every_domain(RATE)) as citizens:
        notifications = consumers.notifications[0]
        group = consumers.notifications_group
        citizens.start()
        await asyncio.sleep(6)
        before = metric_sum(await notifications.metrics(), "sinergi_consumer_events_total", consumer=group)
        # A batch is in flight (its transaction waits on the inbox) when SIGTERM arrives.
        async with batch_held(consumers.notifications_db, "inbox") as (conn, waiting):
            inbox_before = await conn.fetchval("SELECT count(*) FROM inbox")
            signalled = notifications.send(signal.SIGTERM)
            await asyncio.sleep(HOLD_AFTER_SIGTERM)
            waited_for_batch = notifications.running
        stopped = await notifications.exited(signalled)
        log = notifications.log()
        inbox_after = (await db_fetch(consumers.notifications_db, "SELECT count(*) AS n FROM inbox"))[0]["n"]
        # Nothing half-sent: the worker finished its sends and recorded them before exiting.
        sending = await db_fetch(
            consumers.notifications_db, "SELECT count(*) AS n FROM notifications WHERE status = 'sending'"
        )
        await asyncio.sleep(3)  # events keep arriving while it is down
        await notifications.start()
        await asyncio.sleep(4)
        redelivered = metric_sum(
            await notifications.metrics(), "sinergi_inbox_duplicates_skipped_total", consumer=group
        )
        await citizens.stop()
        assert citizens.errors() == []

        # uvicorn re-raises the captured SIGTERM after its graceful shutdown.
        assert stopped.exit_code in (0, -signal.SIGTERM), log[-3000:]
        assert stopped.seconds < 25
        assert "Application shutdown complete" in log and "service stopped" in log
        assert before > 0
        assert waited_for_batch  # it did not leave while its batch was in flight ...
        assert inbox_after > inbox_before  # ... it finished the batch and committed it ...
        assert redelivered == 0  # ... and its offsets: nothing came back after the restart
        assert sending[0]["n"] == 0

        result = await rig.tally(consumers, citizens.all_codes)
        assert result.problems() == []  # every message sent exactly once

    print(
        f"FIGURES consumer-sigterm: {3 * RATE:.0f} writes/s for {citizens.duration:.0f} s, {result.writes}"
        f" accepted; SIGTERM to notifications while {waiting} batch was in flight (held"
        f" {HOLD_AFTER_SIGTERM:.0f} s more): it waited, committed the batch ({inbox_after - inbox_before}"
        f" events) and exited ({stopped.exit_code}) {stopped.seconds:.1f} s after the signal (grace 25 s);"
        f" 0 notifications left half-sent; after the restart {redelivered:.0f} events redelivered;"
        f" {result.summary()}"
    )
