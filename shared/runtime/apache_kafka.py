"""Apache Kafka, the broker production runs, started on loopback from its own jars
(Maven Central; `shared/runtime/maven/kafka/pom.xml`), for the tests that must hold on the
production engine and for `make run` when asked (`SINERGI_EMBEDDED_BROKER=kafka`).

One KRaft node that is both controller and broker, with its own data folder, on free
loopback ports. The jars are resolved once into `.cache/kafka/` (about 45 MB, a few
seconds with a warm Maven repository under `.cache/m2`); each start formats the node's
storage if it is new and waits until the broker answers a metadata request. Unlike the
embedded Tansu broker it has the idempotent producer and transactions, keeps its data
on disk across `restart()`, and rebalances a group within its `group.initial.rebalance.
delay.ms` (0 here, as in a test cluster).

Kafka 4 needs Java 17 or newer: JAVA_HOME if it is, else the newest JDK under
/usr/lib/jvm (shared/runtime/keycloak.py `java_home`).
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from shared.runtime.embedded import KafkaProtocolBroker, free_port
from shared.runtime.jvm import CACHE, java_home, pom_property, resolve

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("maven") / "kafka" / "pom.xml"
MINIMUM_JAVA = 17
# A small heap: the tests' and `make run`'s traffic is far below a production broker's.
JVM_OPTIONS = ("-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")
LOG4J = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.BrokerServer
logger.server.level = info
"""


def kafka_version() -> str:
    return pom_property(POM, "kafka.version")


def libraries() -> Path:
    """The folder of the broker's jars, resolved with Maven on first use."""
    libs = CACHE / "kafka" / f"kafka-{kafka_version()}" / "libs"
    if not (libs / f"kafka_2.13-{kafka_version()}.jar").exists():
        resolve(POM, f"Apache Kafka {kafka_version()}")
    return libs


# What one loopback node sets besides its addresses (`node_addresses`): what compose sets
# for its one broker (topics created on purpose, never by a client), replication 1.
SINGLE_NODE_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "auto.create.topics.enable": "false",
    "num.partitions": "6",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # A group's first member need not wait for others to join, and the tests may
    # shorten consumers' session timeouts (3 s) to see a lost member sooner.
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
}


def node_addresses(
    *, node_id: int, port: int, controller_port: int, voters: str, data_dir: Path
) -> dict[str, str]:
    """Where one node is: its id, its loopback listeners (PLAINTEXT for clients and
    brokers, CONTROLLER for the quorum), the quorum's voters (static, as compose names
    them) and its data folder."""
    return {
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "log.dirs": str(data_dir),
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """A server.properties file's text."""
    return "".join(f"{name}={value}\n" for name, value in properties.items())


def broker_properties(*, port: int, controller_port: int, data_dir: Path, partitions: int = 6) -> str:
    """The node's server.properties: KRaft, one node, loopback, what compose sets
    (topics created on purpose, never by a client), replication 1."""
    addresses = node_addresses(
        node_id=1,
        port=port,
        controller_port=controller_port,
        voters=f"1@127.0.0.1:{controller_port}",
        data_dir=data_dir,
    )
    return render_properties({**addresses, **SINGLE_NODE_SETTINGS, "num.partitions": str(partitions)})


def new_cluster_id() -> str:
    """A cluster id as Kafka makes them: 16 random bytes, URL-safe base64 without
    padding, never starting with "-" (the storage tool would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class ApacheKafka(KafkaProtocolBroker):
    """One Apache Kafka node (KRaft, broker and controller) on 127.0.0.1 with its data in
    `work_dir`; `bootstrap` for clients. Data survives `stop()`/`restart()`/`kill()`.

    Alone by default. A node of a cluster (shared/runtime/kafka_cluster.py) is given its
    `node_id`, its `controller_port`, the quorum's `voters`, the cluster's `settings`
    (instead of `SINGLE_NODE_SETTINGS`) and the `cluster_id` every node is formatted with.
    """

    label = "Apache Kafka"

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 90.0,
        node_id: int = 1,
        controller_port: int | None = None,
        voters: str | None = None,
        settings: Mapping[str, str] | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self.work_dir = Path(work_dir).absolute()
        super().__init__(port, log_path or self.work_dir / "kafka.log", startup_timeout)
        self.controller_port: int | None = controller_port
        self.node_id = node_id
        self.voters = voters
        self.settings = settings
        self.cluster_id = cluster_id

    def __repr__(self) -> str:
        return (
            f"ApacheKafka(port={self._port})"
            if self.voters is None
            else f"ApacheKafka(node={self.node_id}, port={self._port})"
        )

    def _prepare(self) -> Callable[[], None]:
        libs = libraries()
        java = java_home(MINIMUM_JAVA) / "bin" / "java"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "log4j2.properties").write_text(LOG4J)
        return lambda: self._launch(java, libs)

    def _java(self, java: Path, libs: Path, main: str, *args: str) -> list[str]:
        return [
            str(java), *JVM_OPTIONS, f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            "-cp", f"{libs}/*", main, *args,
        ]  # fmt: skip

    def _properties(self, data: Path) -> str:
        assert self.controller_port is not None
        if self.settings is None:
            return broker_properties(port=self.port, controller_port=self.controller_port, data_dir=data)
        assert self.voters is not None, "a node of a cluster is given the quorum's voters"
        addresses = node_addresses(
            node_id=self.node_id,
            port=self.port,
            controller_port=self.controller_port,
            voters=self.voters,
            data_dir=data,
        )
        return render_properties({**self.settings, **addresses})

    def _launch(self, java: Path, libs: Path) -> None:
        if self.controller_port is None:
            self.controller_port = free_port()
        data = self.work_dir / "data"
        config = self.work_dir / "server.properties"
        config.write_text(self._properties(data))
        if not (data / "meta.properties").exists():
            # A new node: its storage formatted once, under its cluster's id (alone: an
            # id of its own). A static quorum (`controller.quorum.voters`) needs no
            # --standalone or --initial-controllers.
            cluster_id = self.cluster_id or new_cluster_id()
            subprocess.run(
                self._java(
                    java, libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)
                ),
                check=True,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "JAVA_HOME": str(java.parent.parent)},
            )
        argv = self._java(java, libs, "kafka.Kafka", str(config))
        self._serve(argv, log_prefix="sinergi-kafka-", death_signal=signal.SIGTERM)
