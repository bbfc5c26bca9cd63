"""Reading a whole test topic with a plain kafka-python consumer, as an outside observer would."""

from __future__ import annotations

from typing import Any

from kafka import TopicPartition

from store.kafka_clients import KafkaConnection


def read_topic(
    bootstrap: str, topic: str, isolation_level: str = "read_committed", partition_number: int = 0
) -> list[Any]:
    """Every record of one partition (0 unless told), in offset order; room for the 10 MB
    dead-letter case."""
    consumer = KafkaConnection(bootstrap).consumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level=isolation_level,
        max_partition_fetch_bytes=32 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    partition = TopicPartition(topic, partition_number)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    end = consumer.end_offsets([partition])[partition]
    records: list[Any] = []
    while consumer.position(partition) < end:
        records.extend(consumer.poll(timeout_ms=500).get(partition, []))
    consumer.close()
    return records
