"""The system's shape in one place: services, their ports and databases, and topics.

Used by `make run`, the test harness and the deployment checks, so a new service is
declared once.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from shared.schemas.registry import DOMAIN_TOPICS


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    database: str
    consumer_groups: tuple[str, ...] = ()
    # The address people are given first (`make run` prints it at the top).
    front_door: bool = False

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def exists(self) -> bool:
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("integration", 8000, "integration", ("integration",)),
    ServiceInfo("permits", 8001, "permits"),
    ServiceInfo("health", 8002, "health"),
    ServiceInfo("complaints", 8003, "complaints"),
    ServiceInfo("notifications", 8004, "notifications", ("notifications",)),
    # The citizens' portal: pages over the services' APIs; its database holds form drafts.
    ServiceInfo("portal", 8005, "portal", front_door=True),
)

# Partitions per domain topic: the unit of consumer parallelism (a group can use at
# most this many instances) while keeping one aggregate's events in order.
DOMAIN_PARTITIONS = 6
# Dead letters are few and replayed by an operator: no parallelism needed.
DEAD_LETTER_PARTITIONS = 1
# Domain topics keep every event (-1, no time limit): the integration view is rebuilt
# from them. Dead letters are looked at and replayed within days; kept 30 days.
DOMAIN_RETENTION_MS = -1
DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000
# A broker deletes whole segments, once their newest record is past the retention, and a
# quiet dead-letter topic would roll its segment only after Apache Kafka's default 7 days:
# a letter could outlive its 30 days by a week. Rolled daily, none outlives them by more
# than a day (docs/privacy.md).
DEAD_LETTER_SEGMENT_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Replication:
    """Copies of each partition, and how many must hold an event before the producer's
    acks=all is answered."""

    factor: int
    min_insync: int


# One broker (deploy/docker-compose.yml, the tests): one copy. Three brokers
# (deploy/docker-compose.cluster.yml): three copies, two in sync, so one broker may be
# down without losing an acknowledged event or stopping the producers.
SINGLE_BROKER = Replication(factor=1, min_insync=1)
THREE_BROKERS = Replication(factor=3, min_insync=2)


def dead_letter_topic(consumer_group: str) -> str:
    return f"{consumer_group}.dlq"


def topics() -> dict[str, int]:
    """Every topic the system uses, with its partition count (dead-letter topics
    need little parallelism)."""
    result = dict.fromkeys(DOMAIN_TOPICS, DOMAIN_PARTITIONS)
    for service in SERVICES:
        for group in service.consumer_groups:
            result[dead_letter_topic(group)] = DEAD_LETTER_PARTITIONS
    return result


def retention_ms(topic: str) -> int:
    """How long a topic of topics() keeps its events."""
    return DOMAIN_RETENTION_MS if topic in DOMAIN_TOPICS else DEAD_LETTER_RETENTION_MS


def segment_ms(topic: str) -> int | None:
    """How often a topic of topics() rolls its segment (None: the broker's default)."""
    return None if topic in DOMAIN_TOPICS else DEAD_LETTER_SEGMENT_MS


def port_of(name: str) -> int:
    """The service's port: its default `<SERVICE>_PORT` (contract, docs/architecture.md)."""
    return next(s.port for s in SERVICES if s.name == name)


def running_services() -> list[ServiceInfo]:
    """Services whose code exists in this checkout."""
    return [s for s in SERVICES if s.exists]
