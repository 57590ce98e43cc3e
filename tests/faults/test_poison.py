"""Poison messages on every partition of every domain topic: each becomes a dead letter
with its reason, the partitions keep flowing, and dead letters are replayed after a fix."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.kit.consumer import dead_letter_topic
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.runtime.topology import DOMAIN_PARTITIONS
from shared.schemas import CONTENT_TYPE, Envelope
from tests.faults.support import (
    ADMIN,
    ALL_TOPICS,
    CREATED_TYPE,
    DOMAIN_TOPICS,
    Citizens,
    Producers,
    metric_sum,
    new_consumers,
    tally,
)
from tests.harness import db_fetch, read_topic, wait_for

# > 1 MB, which parse_record refuses (more than 1,000,000 bytes), and within the record
# size Apache Kafka accepts by default (message.max.bytes, 1 MiB + 12 bytes; compose keeps
# it): a bigger record is refused by the broker and never reaches a consumer.
OVERSIZE = 1_040_000
TOPIC_TYPE = {
    "complaints.events": CREATED_TYPE["complaints"],
    "permits.events": CREATED_TYPE["permits"],
    "health.events": CREATED_TYPE["health"],
    "notifications.events": "id.sinergi.notifications.notification.created.v1",
}
PERMIT_SUBMITTED = CREATED_TYPE["permits"]


def poison(topic: str) -> dict[str, bytes]:
    """One of each kind of bad record for `topic`, by the reason it must be dead-lettered with."""
    event_type = TOPIC_TYPE[topic]
    domain = event_type.split(".")[2]

    def envelope(type_: str, data: dict[str, Any]) -> bytes:
        return (
            Envelope(
                source=f"/sinergi/{domain}/33.06",
                type=type_,
                subject=f"poison-{uuid.uuid4().hex[:8]}",
                dataschema=f"urn:sinergi:schema:{type_}",
                region="33.06",
                data=data,
            )
            .to_kafka()
            .value
        )

    padding = "x" * OVERSIZE
    return {
        "invalid_cloudevent": b"{this is not json",
        "invalid_data": envelope(event_type, {"tracking_code": 42, "status": ["not", "a", "status"]}),
        "unknown_type": envelope(event_type.replace(".v1", "").rsplit(".", 1)[0] + ".teleported.v1", {}),
        "oversize": json.dumps({"specversion": "1.0", "padding": padding}).encode(),
    }


async def dead_letters(infra: Infrastructure, group: str) -> list[Any]:
    return await read_topic(infra.kafka_bootstrap, dead_letter_topic(group), timeout=30)


def reasons(letters: list[Any]) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        found[(headers["x-dlq-reason"], headers["x-dlq-original-topic"])] += 1
    return found


# The documented behaviour (docs/reliability.md, finding 2), not read from the code under
# test: the notification service dead-letters event types it does not know; the
# integration view, a read model, counts and skips them.
SKIPS_UNKNOWN_TYPES = {"notifications": False, "integration": True}


@pytest.mark.timeout(300)
async def test_poison_is_dead_lettered_partitions_flow_and_replay_applies_after_a_fix(
    infra: Infrastructure, producers: Producers, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> None:
    consumers = await new_consumers(infra, smtp_sink, fake_gateway, key_holders=producers.urls)
    n_group, i_group = consumers.notifications_group, consumers.integration_group
    skip = SKIPS_UNKNOWN_TYPES
    await consumers.start()
    notifications, integration = consumers.notifications[0], consumers.integration[0]
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, max_request_size=4_000_000)
    await producer.start()
    try:
        # Every kind of poison on every partition of every topic, ahead of the good events.
        sent: Counter[tuple[str, str]] = Counter()
        for topic in ALL_TOPICS:
            for partition in range(DOMAIN_PARTITIONS):
                for reason, value in poison(topic).items():
                    await producer.send_and_wait(
                        topic,
                        value,
                        key=f"poison-{partition}".encode(),
                        partition=partition,
                        headers=[("content-type", CONTENT_TYPE.encode())],
                    )
                    sent[(reason, topic)] += 1

        def expected(service: str, topics: list[str]) -> Counter[tuple[str, str]]:
            return Counter(
                {
                    key: n
                    for key, n in sent.items()
                    if key[1] in topics and not (key[0] == "unknown_type" and skip[service])
                }
            )

        n_expected = expected("notifications", list(DOMAIN_TOPICS.values()))
        i_expected = expected("integration", ALL_TOPICS)

        # Good events behind the poison, until every partition of every domain topic has one.
        citizens = Citizens(producers, dict.fromkeys(("complaints", "permits", "health"), 6.0))
        citizens.start()
        try:

            async def every_partition_has_a_good_event() -> bool:
                for domain, topic in DOMAIN_TOPICS.items():
                    codes = set(citizens.codes(domain))
                    partitions = {
                        r.partition
                        for r in await read_topic(infra.kafka_bootstrap, topic)
                        if r.value and any(code.encode() in r.value for code in codes)
                    }
                    if len(partitions) < DOMAIN_PARTITIONS:
                        return False
                return True

            await wait_for(every_partition_has_a_good_event, timeout=60, interval=1.0)
        finally:
            await citizens.stop()
        assert citizens.errors() == []
        result = await tally(infra, consumers, smtp_sink, fake_gateway, citizens.all_codes)
        assert result.problems() == []  # applied behind the poison, exactly once

        n_letters = await wait_for(
            lambda: _at_least(dead_letters(infra, n_group), sum(n_expected.values())), timeout=60
        )
        i_letters = await wait_for(
            lambda: _at_least(dead_letters(infra, i_group), sum(i_expected.values())), timeout=60
        )
        assert reasons(n_letters) == n_expected
        assert reasons(i_letters) == i_expected
        for letter in [*n_letters, *i_letters]:
            assert dict(letter.headers)["x-dlq-error"]  # the error, for the operator
        unknown_counted = {
            service: metric_sum(await p.metrics(), "sinergi_consumer_unknown_types_total")
            for service, p in (("notifications", notifications), ("integration", integration))
        }
        for service, topics in (("notifications", 3), ("integration", 4)):
            if skip[service]:
                assert unknown_counted[service] == topics * DOMAIN_PARTITIONS
            else:
                assert unknown_counted[service] == 0

        # A valid event whose handler keeps failing (here: the database refuses the write)
        # is dead-lettered too; after the fix the replay applies it, exactly once.
        await db_fetch(
            consumers.notifications_db,
            "ALTER TABLE notifications ADD CONSTRAINT faults_refuse_permits"
            f" CHECK (source_event_type <> '{PERMIT_SUBMITTED}') NOT VALID",
        )
        await db_fetch(
            consumers.integration_db,
            f"ALTER TABLE history ADD CONSTRAINT faults_refuse_permits CHECK (event_type <> '{PERMIT_SUBMITTED}')"
            " NOT VALID",
        )
        refused = Citizens(producers, {"permits": 2.0, "complaints": 2.0})
        refused.start()
        await asyncio.sleep(3)
        await refused.stop()
        assert refused.errors() == []
        refused_codes = refused.codes("permits")
        flowing_codes = {"complaints": refused.codes("complaints")}
        for group, letters_before in ((n_group, len(n_letters)), (i_group, len(i_letters))):
            letters = await wait_for(
                lambda g=group, b=letters_before: _at_least(dead_letters(infra, g), b + len(refused_codes)),
                timeout=60,
            )
            handler_errors = [
                dict(r.headers) for r in letters if dict(r.headers)["x-dlq-reason"] == b"handler_error"
            ]
            assert len(handler_errors) == len(refused_codes)
            assert all(b"CheckViolation" in h["x-dlq-error"] for h in handler_errors)
            assert all(h["x-dlq-attempts"] == b"3" for h in handler_errors)
        # The partitions kept flowing: complaints filed after the refused permits were applied.
        after = await tally(infra, consumers, smtp_sink, fake_gateway, flowing_codes)
        assert after.problems() == []

        # The fix, then the replay: the operator's command for one service, the admin
        # endpoint for the other.
        await db_fetch(
            consumers.notifications_db, "ALTER TABLE notifications DROP CONSTRAINT faults_refuse_permits"
        )
        await db_fetch(consumers.integration_db, "ALTER TABLE history DROP CONSTRAINT faults_refuse_permits")
        n_total = sum(n_expected.values()) + len(refused_codes)
        i_total = sum(i_expected.values()) + len(refused_codes)
        output = await notifications.run_command("replay-dead-letters")
        assert f"'{n_group}': {n_total}" in output, output
        async with integration.client(timeout=120) as client:
            replayed = await client.post("/admin/dead-letters/replay", headers=ADMIN)
        assert replayed.status_code == 200 and replayed.json() == {i_group: i_total}, replayed.text

        fixed = await tally(infra, consumers, smtp_sink, fake_gateway, {"permits": refused_codes})
        assert fixed.problems() == []
        # The poison, replayed too, failed again: dead letters once more, nothing applied.
        n_after = await wait_for(
            lambda: _at_least(dead_letters(infra, n_group), n_total + sum(n_expected.values())), timeout=60
        )
        i_after = await wait_for(
            lambda: _at_least(dead_letters(infra, i_group), i_total + sum(i_expected.values())), timeout=60
        )
        assert len(n_after) == n_total + sum(n_expected.values())
        assert len(i_after) == i_total + sum(i_expected.values())
    finally:
        await producer.stop()
        await consumers.stop()

    print(
        f"FIGURES poison: {sum(sent.values())} poison records (4 kinds x {DOMAIN_PARTITIONS} partitions x"
        f" {len(ALL_TOPICS)} topics, oversize {OVERSIZE:,} bytes); dead letters: notifications"
        f" {sum(n_expected.values())}, integration {sum(i_expected.values())}, reasons"
        f" {sorted({r for r, _ in i_expected})}; unknown types counted and skipped: {unknown_counted};"
        f" {result.writes} good writes behind the poison on all {DOMAIN_PARTITIONS} partitions of each"
        f" domain topic: {result.summary()}; {len(refused_codes)} permits refused by the database"
        f" -> handler_error dead letters in both groups, partitions kept flowing"
        f" ({len(flowing_codes['complaints'])} complaints applied meanwhile); after the fix replayed"
        f" {n_total} (notifications, command) and {i_total} (integration, endpoint) letters: refused"
        f" permits applied exactly once ({fixed.summary()}), poison dead-lettered again"
    )


async def _at_least(letters: Any, n: int) -> list[Any] | None:
    found = await letters
    return found if len(found) >= n else None
