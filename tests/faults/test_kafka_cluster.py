"""Three Apache Kafka brokers (each also a controller) set up as the compose cluster
profile sets them up (replication factor 3, min.insync.replicas 2, settings read from
deploy/docker-compose.cluster.yml: shared/runtime/kafka_cluster.py), whatever broker
the rest of the session runs on. The producing services and the consumers run on it as
in production, with all three brokers as bootstrap, under a steady open-loop load of
complaints, permit applications and bookings:

- the broker leading the most traffic is SIGKILLed, then started again on its ports and
  data: every accepted write takes effect exactly once;
- two of three brokers are stopped: writes are still accepted (the outbox holds them),
  nothing reaches a consumer while fewer than two replicas can take it, per-key order
  holds, and everything flows once one broker is back;
- a consumer instance leaves its group and another joins: the partitions move.

Times (failover, write latency during the fault, rebalances) are printed, not asserted.
Only the services' timings are shortened (tests/faults/support.py PROCESS_ENV: 6 s
consumer sessions, a 0.5 s relay poll); the brokers keep the deployment's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.kafka_cluster import KafkaCluster
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.runtime.topology import topics
from tests.faults.support import (
    ALL_TOPICS,
    DOMAIN_TOPICS,
    Citizens,
    Rig,
    ServiceProcess,
    every_domain,
    partitions_of,
    percentile,
    running_producers,
    view_counts,
)
from tests.harness import officer_headers, read_topic, scan_every_topic, wait_for
from tests.integration.test_complaints_service import complaint_body

RATE = 3.0  # writes per second per domain
OUTAGE_SECONDS = 10.0  # two brokers away
ORDERED_KEYS = 5  # complaints taken through three steps while two brokers are away
COORDINATOR = officer_headers("coordinator", subject="faults-coordinator")
STEPS = (("verify", {}), ("dispatch", {"opd": "DPUPR", "note": "Mohon ditindaklanjuti"}))
ORDER = ["filed", "verified", "dispatched"]

Partition = tuple[str, int]


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    work = Path(tempfile.mkdtemp(prefix="sinergi-cluster-"))
    cluster = KafkaCluster(work)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.kill()  # its data is thrown away with the folder
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
async def cluster_rig(
    infra: Infrastructure, cluster: KafkaCluster, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> AsyncIterator[Rig]:
    """Producers of their own on the cluster (databases on the session's PostgreSQL);
    the cluster's topics are scanned for personal data at the end, as the session's are."""
    await cluster.create_topics(topics())
    on_cluster = dataclasses.replace(
        infra,
        kafka_bootstrap=cluster.bootstrap,
        kafka_idempotence=True,
        embedded_kafka=None,
        kafka_kind="cluster",
    )
    async with running_producers(on_cluster) as producers:
        yield Rig(on_cluster, producers, smtp_sink, fake_gateway)
    problems = await scan_every_topic(cluster.running_bootstrap())
    assert not problems, "personal data on the cluster's topics:\n" + "\n".join(problems[:20])


def latencies(citizens: Citizens) -> list[float]:
    """Every write's latency so far, in completion order across the domains."""
    return [x for o in citizens.outcomes.values() for x in o.latencies]


def write_counts(citizens: Citizens) -> dict[str, int]:
    return {domain: len(outcome.accepted) for domain, outcome in citizens.outcomes.items()}


async def end_offsets(bootstrap: str, partitions: list[Partition]) -> dict[Partition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in partitions])
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}
    finally:
        await consumer.stop()


async def flowing_again(
    cluster: KafkaCluster, victim: int, partitions: list[Partition], killed_at: float, killed_wall_ms: int
) -> tuple[dict[Partition, float], dict[Partition, float]]:
    """Seconds from the kill until each of `partitions` had a leader other than `victim`,
    and until it delivered a record created after the kill (a consumer reads only what
    enough replicas hold: events flow again)."""
    moved: dict[Partition, float] = {}
    flowing: dict[Partition, float] = {}
    reader = AIOKafkaConsumer(bootstrap_servers=cluster.running_bootstrap(), enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([TopicPartition(t, p) for t, p in partitions])
        await reader.seek_to_end()
        checked = 0.0
        while len(flowing) < len(partitions) or len(moved) < len(partitions):
            if time.monotonic() - killed_at > 120:
                raise TimeoutError(f"moved {moved}, flowing {flowing} of {partitions}")
            for tp, records in (await reader.getmany(timeout_ms=200)).items():
                if any(r.timestamp >= killed_wall_ms for r in records):
                    flowing.setdefault((tp.topic, tp.partition), time.monotonic() - killed_at)
            if time.monotonic() - checked > 0.5:
                checked = time.monotonic()
                with contextlib.suppress(Exception):  # metadata from a node still catching up
                    for partition, state in (await cluster.partitions({t for t, _ in partitions})).items():
                        if partition in partitions and state.leader not in (-1, victim):
                            moved.setdefault(partition, checked - killed_at)
        return moved, flowing
    finally:
        await reader.stop()


async def busiest_leader(cluster: KafkaCluster) -> tuple[int, list[Partition], dict[int, int]]:
    """The node leading the most records of the event topics, the partitions it leads,
    and the records led per node."""
    states = await cluster.partitions(ALL_TOPICS)
    ends = await end_offsets(cluster.bootstrap, list(states))
    led: dict[int, int] = dict.fromkeys(cluster.nodes, 0)
    for partition, state in states.items():
        led[state.leader] += ends.get(partition, 0)
    victim = max(led, key=lambda node: led[node])
    return victim, sorted(p for p, s in states.items() if s.leader == victim), led


async def instances_gaining_partitions(
    instances: list[ServiceProcess], before: dict[str, set[Partition]], since: float
) -> dict[str, float]:
    """Seconds from `since` until each instance has applied events from a partition it
    had not (its lag gauge gains a partition; with events every few hundred ms on each
    partition, within that much of the assignment)."""
    gained: dict[str, float] = {}

    async def all_gained() -> bool:
        for p in instances:
            key = f"{p.name}:{p.port}"
            if key not in gained and await partitions_of(p) - before.get(key, set()):
                gained[key] = time.monotonic() - since
        return len(gained) == len(instances)

    await wait_for(all_gained, timeout=90, interval=0.2)
    return gained


def seconds_by_service(seconds: dict[str, float]) -> str:
    return ", ".join(f"{key.split(':')[0]} {value:.1f} s" for key, value in seconds.items())


@pytest.mark.timeout(300)
async def test_killed_leader_of_the_busiest_partitions_loses_and_duplicates_nothing(
    cluster_rig: Rig, cluster: KafkaCluster
) -> None:
    rig = cluster_rig
    async with rig.consumers() as consumers, rig.citizens(every_domain(RATE)) as citizens:
        citizens.start()
        await asyncio.sleep(6)
        victim, led, records_led = await busiest_leader(cluster)
        completed_before = len(latencies(citizens))
        killed_at, killed_wall_ms = time.monotonic(), int(time.time() * 1000)
        cluster.nodes[victim].kill()
        try:
            moved, flowing = await flowing_again(cluster, victim, led, killed_at, killed_wall_ms)
            during = latencies(citizens)[completed_before:]
        finally:
            # The crashed broker starts again on its ports and data, and catches up.
            await asyncio.to_thread(cluster.nodes[victim].start)
        rejoined = await cluster.wait_fully_replicated(topics())
        result = await rig.every_write_once(consumers, citizens)

    print(
        f"FIGURES cluster-leader-kill: 3 brokers (RF 3, min ISR 2); {3 * RATE:.0f} writes/s for"
        f" {citizens.duration:.0f} s, {result.writes} accepted, errors 0; SIGKILLed node {victim}, leading"
        f" {len(led)} partitions of the event topics (records led per node {records_led});"
        f" leaders moved after {max(moved.values()):.1f} s, events flowed again on every partition it"
        f" led after {max(flowing.values()):.1f} s (first {min(flowing.values()):.1f} s); write latency"
        f" during the fault ({len(during)} writes) p50 {percentile(during, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(during, 0.99) * 1000:.0f} ms, max {max(during) * 1000:.0f} ms; node"
        f" {victim} back on its data, fully replicated {rejoined:.1f} s after its start; {result.summary()}"
    )


async def walk_complaint(complaints: ServiceProcess) -> str:
    """A complaint filed, verified and dispatched: three events under one key."""
    async with complaints.client() as client:
        filed = await client.post("/complaints", json=complaint_body())
        assert filed.status_code == 201, filed.text
        code = filed.json()["tracking_code"]
        for step, body in STEPS:
            response = await client.post(f"/officer/complaints/{code}/{step}", json=body, headers=COORDINATOR)
            assert response.status_code == 200, (step, response.text)
    return code


async def order_per_key(bootstrap: str, codes: list[str]) -> dict[str, tuple[list[str], set[int]]]:
    """Per complaint: its events' kinds in offset order (each event id once) and the
    partitions they are on."""
    found: dict[str, tuple[list[str], set[int]]] = {code: ([], set()) for code in codes}
    seen: set[str] = set()
    for record in sorted(
        await read_topic(bootstrap, DOMAIN_TOPICS["complaints"], timeout=30),
        key=lambda r: (r.partition, r.offset),
    ):
        event = json.loads(record.value)
        code = (event.get("data") or {}).get("tracking_code")
        if code in found and event["id"] not in seen:
            seen.add(event["id"])
            found[code][0].append(event["type"].split(".")[-2])
            found[code][1].add(record.partition)
    return found


@pytest.mark.timeout(300)
async def test_two_of_three_brokers_stopped_writes_wait_in_the_outbox_then_flow(
    cluster_rig: Rig, cluster: KafkaCluster
) -> None:
    rig, producers = cluster_rig, cluster_rig.producers
    first, second, survivor = sorted(cluster.nodes)
    second_back: asyncio.Future[None] | None = None
    try:
        async with rig.consumers() as consumers, rig.citizens(every_domain(RATE)) as citizens:
            citizens.start()
            await asyncio.sleep(4)
            # Two brokers stopped one after the other (each hands its leaderships on).
            await asyncio.to_thread(cluster.nodes[first].stop)
            await asyncio.to_thread(cluster.nodes[second].stop)
            stopped_at = time.monotonic()
            counts_at_stop = write_counts(citizens)
            ordered = [await walk_complaint(producers.complaints) for _ in range(ORDERED_KEYS)]
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
            pending = await producers.outbox_pending()
            during = {d: o.accepted[counts_at_stop[d] :] for d, o in citizens.outcomes.items()}
            flat = [c for codes in during.values() for c in codes]
            items, _, _ = await view_counts(consumers.integration_db, flat)
            # One broker back: a quorum of controllers and two replicas again.
            returned_at = time.monotonic()
            await asyncio.to_thread(cluster.nodes[first].start)
            started_in = time.monotonic() - returned_at

            async def drained() -> bool:
                return not any((await producers.outbox_pending()).values())

            await wait_for(drained, timeout=120, interval=0.5)
            drained_in = time.monotonic() - returned_at
            # Everything flowed with two brokers; the third comes back meanwhile.
            second_back = asyncio.ensure_future(asyncio.to_thread(cluster.nodes[second].start))
            # While one broker was left, the outboxes held the writes and no consumer saw them.
            assert all(pending.values()), pending
            assert all(during.values()), during
            assert sum(items.values()) == 0, items
            result = await rig.every_write_once(consumers, citizens)
            order = await order_per_key(rig.infra.kafka_bootstrap, ordered)
            assert {code: kinds for code, (kinds, _) in order.items()} == dict.fromkeys(ordered, ORDER)
            assert all(len(partitions) == 1 for _, partitions in order.values()), order
    finally:
        if second_back is not None:
            await second_back
        await asyncio.to_thread(cluster.start)  # whichever node is still stopped
        await cluster.wait_fully_replicated(topics())

    print(
        f"FIGURES cluster-two-down: {3 * RATE:.0f} writes/s for {citizens.duration:.0f} s, {result.writes} accepted"
        f" (errors 0), {len(flat)} while nodes {first} and {second} were stopped ({OUTAGE_SECONDS:.0f} s, node"
        f" {survivor} alone); outbox pending then {pending}, applied by the view then 0; {ORDERED_KEYS}"
        f" complaints filed, verified and dispatched meanwhile, on the topic in that order; node {first}"
        f" started in {started_in:.1f} s, outboxes drained {drained_in:.1f} s after its start; {result.summary()}"
    )


@pytest.mark.timeout(300)
async def test_consumer_instance_leaving_and_joining_rebalances(cluster_rig: Rig) -> None:
    rig = cluster_rig
    async with rig.consumers(instances=2) as consumers, rig.citizens(every_domain(RATE)) as citizens:
        citizens.start()
        remaining = [consumers.notifications[0], consumers.integration[0]]
        leaving = [consumers.notifications[1], consumers.integration[1]]

        async def all_consuming() -> bool:
            return all([await partitions_of(p) for p in consumers.all])

        await wait_for(all_consuming, timeout=60, interval=0.5)
        owned = {f"{p.name}:{p.port}": await partitions_of(p) for p in remaining}
        left_at = time.monotonic()
        stops = await asyncio.gather(*(p.stop(signal.SIGTERM) for p in leaving))
        after_leave = await instances_gaining_partitions(remaining, owned, left_at)

        # New processes (new ports) in the same groups; timed from when they answer /ready.
        for p in leaving:
            await p.start(ready=False)
        for p in leaving:
            await p.wait_ready()
        joined_at = time.monotonic()
        after_join = await instances_gaining_partitions(leaving, {}, joined_at)
        result = await rig.every_write_once(consumers, citizens)

    print(
        f"FIGURES cluster-rebalance: {3 * RATE:.0f} writes/s for {citizens.duration:.0f} s, {result.writes}"
        f" accepted; 2 instances per group, one of each stopped (SIGTERM, exited in"
        f" {max(s.seconds for s in stops):.1f} s): the other applied events of a partition it had not"
        f" after {seconds_by_service(after_leave)}; a new instance of each joined: first events applied"
        f" {seconds_by_service(after_join)} after it answered /ready; {result.summary()}"
    )
