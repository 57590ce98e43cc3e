"""The loopback cluster of the fault tests (shared/runtime/kafka_cluster.py) takes its
brokers' and topics' settings from the compose cluster profile itself, so the two
cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.runtime.kafka_cluster import (
    COMPOSE_CLUSTER,
    NODE_ADDRESS_VARIABLES,
    KafkaCluster,
    compose_broker_settings,
    compose_topic_settings,
    property_name,
)


def test_every_broker_setting_of_the_compose_profile_is_the_clusters() -> None:
    compose = yaml.safe_load(COMPOSE_CLUSTER.read_text())
    brokers = [
        s["environment"] for s in compose["services"].values() if "KAFKA_PROCESS_ROLES" in s["environment"]
    ]
    assert len(brokers) == 3
    settings = compose_broker_settings()
    for env in brokers:
        shared = {
            k: str(v) for k, v in env.items() if k.startswith("KAFKA_") and k not in NODE_ADDRESS_VARIABLES
        }
        assert {
            property_name(k): v.lower() if v in ("True", "False") else v for k, v in shared.items()
        } == settings
    # What the deployment promises: one broker may be down without losing acknowledged events.
    assert settings["default.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
    assert settings["offsets.topic.replication.factor"] == "3"
    topic = compose_topic_settings()
    assert (topic.replication_factor, topic.min_insync_replicas) == (3, 2)


def test_the_nodes_differ_only_in_where_they_are(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path)
    nodes = list(cluster.nodes.values())
    assert [n.node_id for n in nodes] == [1, 2, 3]
    assert all(n.settings == compose_broker_settings() for n in nodes)
    ports = {n.port for n in nodes} | {n.controller_port for n in nodes}
    assert len(ports) == 6
    voters = {n.voters for n in nodes}
    assert voters == {",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)}
    assert len({n.cluster_id for n in nodes}) == 1
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.port}" for n in nodes)


def test_brokers_that_disagree_are_refused(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE_CLUSTER.read_text())
    compose["services"]["kafka-3"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] = 1
    drifted = tmp_path / "cluster.yml"
    drifted.write_text(yaml.safe_dump(compose))
    with pytest.raises(ValueError, match="different settings"):
        compose_broker_settings(drifted)


def test_compose_variable_names_map_to_broker_properties() -> None:
    assert property_name("KAFKA_MIN_INSYNC_REPLICAS") == "min.insync.replicas"
    assert property_name("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "group.initial.rebalance.delay.ms"
    with pytest.raises(ValueError):
        property_name("KAFKA_SOME__UNDERSCORED_NAME")
