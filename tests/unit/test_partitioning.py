"""The relay picks partitions itself (to send whole producer batches); it must pick
exactly what Kafka's default partitioner would, or one aggregate's events could be
split over two partitions when another producer writes the same key."""

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from shared.kit.bus import kafka_partition

_reference = DefaultPartitioner()


@given(key=st.binary(max_size=80), count=st.integers(min_value=1, max_value=64))
def test_same_partition_as_the_kafka_default_partitioner(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert kafka_partition(key, partitions) == _reference(key, partitions, partitions)


def test_known_value_for_a_uuid_key() -> None:
    # A stable value: changing it would move every existing aggregate to another partition.
    key = b"0b6f9d2e-3c1a-4f5e-9a8b-7c6d5e4f3a2b"
    assert kafka_partition(key, list(range(6))) == 2
