"""Three Apache Kafka nodes on loopback, each a broker and a controller, set up as the
compose cluster profile sets up its brokers (deploy/docker-compose.cluster.yml), for
the tests that fault one broker or two (tests/faults/test_kafka_cluster.py).

The settings are read from that compose file, so the loopback cluster and the
deployment cannot drift: every broker's `KAFKA_*` variables (replication factor 3,
min.insync.replicas 2, the internal topics' replication, ...) become its
server.properties the way the apache/kafka image maps them, except the ones that say
where a node is (its id, listeners, quorum voters, data folder), which are loopback
ports and folders here; topics get the replication and min.insync.replicas that
`kafka-init` creates them with. Nothing is shortened for the tests: failover takes as
long as it does in the deployment (a killed broker is fenced after the default
`broker.session.timeout.ms`, 9 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml

from shared.runtime.apache_kafka import ApacheKafka, new_cluster_id
from shared.runtime.embedded import create_topics, free_port
from shared.runtime.jvm import ROOT

COMPOSE_CLUSTER = ROOT / "deploy" / "docker-compose.cluster.yml"
# Compose variables that say where a node is: a loopback node has its own.
NODE_ADDRESS_VARIABLES = frozenset(
    {
        "CLUSTER_ID",
        "KAFKA_NODE_ID",
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_LOG_DIRS",
    }
)


def property_name(variable: str) -> str:
    """`KAFKA_MIN_INSYNC_REPLICAS` -> `min.insync.replicas`, as the apache/kafka image
    maps its environment (one underscore is a dot)."""
    if not variable.startswith("KAFKA_") or "__" in variable:
        raise ValueError(f"{variable}: not a KAFKA_ setting this mapping knows")
    return variable.removeprefix("KAFKA_").lower().replace("_", ".")


def _compose(path: Path) -> dict[str, Any]:
    # safe_load resolves the file's anchors and `<<` merges (x-kafka-cluster-env).
    return yaml.safe_load(path.read_text())


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def compose_broker_settings(path: Path = COMPOSE_CLUSTER) -> dict[str, str]:
    """server.properties every broker of the compose cluster shares, without the node
    addresses. The brokers are the services with `KAFKA_PROCESS_ROLES`; they must agree."""
    found: list[dict[str, str]] = []
    for service in _compose(path)["services"].values():
        env = (service or {}).get("environment") or {}
        if isinstance(env, dict) and "KAFKA_PROCESS_ROLES" in env:
            found.append(
                {
                    property_name(k): _text(v)
                    for k, v in env.items()
                    if k.startswith("KAFKA_") and k not in NODE_ADDRESS_VARIABLES
                }
            )
    if not found or any(settings != found[0] for settings in found):
        raise ValueError(f"{path}: no brokers, or brokers with different settings")
    unresolved = {k: v for k, v in found[0].items() if "${" in v}
    if unresolved:
        raise ValueError(f"{path}: broker settings from the operator's environment: {unresolved}")
    return found[0]


@dataclass(frozen=True)
class TopicSettings:
    """What `kafka-init` creates the topics with in the compose cluster."""

    replication_factor: int
    min_insync_replicas: int


def compose_topic_settings(path: Path = COMPOSE_CLUSTER) -> TopicSettings:
    env = _compose(path)["services"]["kafka-init"]["environment"]
    return TopicSettings(int(env["REPLICATION_FACTOR"]), int(env["MIN_INSYNC_REPLICAS"]))


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass(frozen=True)
class PartitionState:
    leader: int  # -1: none
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class KafkaCluster:
    """`size` KRaft nodes (broker and controller each) on 127.0.0.1, data under
    `work_dir/node-<id>`, settings from the compose cluster profile. Each node is an
    `ApacheKafka` (`nodes[id]`): stop, kill, pause and start it to fault the cluster;
    it comes back on its own ports and data."""

    def __init__(self, work_dir: Path, size: int = 3, *, compose_file: Path = COMPOSE_CLUSTER) -> None:
        self.work_dir = Path(work_dir).absolute()
        self.settings = compose_broker_settings(compose_file)
        self.topic_settings = compose_topic_settings(compose_file)
        ports = _distinct_free_ports(2 * size)
        client_ports, controller_ports = ports[:size], ports[size:]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controller_ports))
        cluster_id = new_cluster_id()
        self.nodes: dict[int, ApacheKafka] = {
            i + 1: ApacheKafka(
                self.work_dir / f"node-{i + 1}",
                client_ports[i],
                node_id=i + 1,
                controller_port=controller_ports[i],
                voters=voters,
                settings=self.settings,
                cluster_id=cluster_id,
            )
            for i in range(size)
        }

    def __repr__(self) -> str:
        return f"KafkaCluster({self.bootstrap})"

    @property
    def bootstrap(self) -> str:
        """Every node, as the compose services are given all three brokers."""
        return ",".join(node.bootstrap for node in self.nodes.values())

    def running_bootstrap(self) -> str:
        """The nodes that are running (a new client cannot bootstrap from a stopped one)."""
        return ",".join(node.bootstrap for node in self.nodes.values() if node.running)

    def start(self) -> None:
        """Start every node at once (none answers before a majority of controllers has
        formed the quorum); a node already running is left as it is."""
        self._each(lambda node: node.start(), self.nodes.values())

    def stop(self) -> None:
        self._each(lambda node: node.stop(), self.nodes.values())

    def kill(self) -> None:
        """SIGKILL every node: for a cluster whose data is thrown away (a graceful stop
        of the last nodes waits for a quorum that is leaving too)."""
        self._each(lambda node: node.kill(), self.nodes.values())

    @staticmethod
    def _each(action: Any, nodes: Iterable[ApacheKafka]) -> None:
        nodes = list(nodes)
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            for future in [pool.submit(action, node) for node in nodes]:
                future.result()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create `topics` as `kafka-init` does in the compose cluster."""
        await create_topics(
            self.running_bootstrap(),
            topics,
            replication_factor=self.topic_settings.replication_factor,
            configs={"min.insync.replicas": str(self.topic_settings.min_insync_replicas)},
        )

    async def partitions(self, topics: Iterable[str]) -> dict[tuple[str, int], PartitionState]:
        """Leader, replicas and in-sync replicas of every partition of `topics`, as the
        running nodes' metadata reports them."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.running_bootstrap(), request_timeout_ms=5000)
        await admin.start()
        try:
            described = await admin.describe_topics(list(topics))
        finally:
            await admin.close()
        return {
            (topic["topic"], p["partition"]): PartitionState(
                p["leader"], tuple(p["replicas"]), tuple(p["isr"])
            )
            for topic in described
            for p in topic["partitions"]
        }

    async def wait_fully_replicated(self, topics: Iterable[str], timeout: float = 120.0) -> float:
        """Wait until every partition of `topics` has a leader and all its replicas in
        sync (a node that came back has caught up); returns the seconds waited."""
        names = list(topics)
        began = time.monotonic()
        while True:
            with contextlib.suppress(Exception):  # a node still joining: ask again
                states = await self.partitions(names)
                if states and all(s.leader >= 0 and set(s.isr) == set(s.replicas) for s in states.values()):
                    return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"{self!r}: {names} not fully replicated within {timeout:.0f} s")
            await asyncio.sleep(0.5)
