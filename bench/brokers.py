"""The broker axis: the same phases on Tansu and on Apache Kafka, started side by side."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from shared.runtime.apache_kafka import ApacheKafka
from shared.runtime.embedded import EmbeddedKafka, create_topics
from shared.runtime.select import (
    EMBEDDED_BROKERS,
    IDEMPOTENT_PRODUCER,
    Infrastructure,
    embedded_broker,
    embedded_kafka_broker,
)
from shared.runtime.topology import topics

# The phases whose figures depend on the broker, measured on every broker of the axis
# (the intake's ladder on the runtime's broker, its cost on each); the others (one-time
# codes, growth, portal pages: the broker is not on their path's critical part) on the
# runtime's broker only.
BROKER_PHASES = {"baselines", "relay", "intake", "end_to_end", "consumers", "rush", "overload"}
BROKER_LABELS = {"tansu": EmbeddedKafka.label, "kafka": ApacheKafka.label}


async def broker_axis(
    infra: Infrastructure, work_dir: Path, stack: contextlib.ExitStack
) -> dict[str, Infrastructure]:
    """The runtime's broker first, then, when the runtime is embedded, every other embedded
    broker started here beside it (same PostgreSQL, same topics): each figure has its
    counterpart on the other engine from the same run on the same machine. A broker given
    explicitly or by testcontainers is an Apache Kafka, measured alone."""
    if infra.kafka_kind != "embedded":
        return {"kafka": infra}
    axis = {embedded_broker(): infra}
    for kind in EMBEDDED_BROKERS:
        if kind in axis:
            continue
        print(f"starting {BROKER_LABELS[kind]} beside it…", flush=True)
        broker = stack.enter_context(embedded_kafka_broker(kind, work_dir / kind))
        await create_topics(broker.bootstrap, topics())
        axis[kind] = replace(
            infra,
            kafka_bootstrap=broker.bootstrap,
            kafka_idempotence=IDEMPOTENT_PRODUCER[kind],
            embedded_kafka=broker,
        )
    return axis
