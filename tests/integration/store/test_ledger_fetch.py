"""The reader's own record parsing (store/ledger_fetch.py) against the real broker: committed
transactions read as kafka-python's consumer reads them, aborted ones and the transaction
markers (control batches) skipped as it skips them, compressed batches read by its path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from kafka.serializer import Deserializer

from store.admin import TopicSpec, ensure_topic
from store.kafka_clients import KafkaConnection
from store.ledger_fetch import LedgerPartitionRecords, use_ledger_records
from store.reader import LedgerReader, RecordCache
from store.records import GENESIS_HASH, LedgerRecord
from tests.integration.store.conftest import read_topic

pytestmark = pytest.mark.kafka


def chained(first: int, count: int, prev_hash: bytes) -> list[LedgerRecord]:
    records = []
    for notification_id in range(first, first + count):
        event = StoredEvent(uuid.uuid4(), 1, "évènement", b"x" * (notification_id * 13 % 700))
        record = LedgerRecord.chained(prev_hash, notification_id, event)
        prev_hash = record.hash
        records.append(record)
    return records


@pytest.fixture
def transactions(kafka_bootstrap: str, ledger_topic: str) -> Iterator[list[LedgerRecord]]:
    """Committed and aborted transactions of ledger records on the test's topic, plain and
    gzip-compressed; the committed records, in order."""
    connection = KafkaConnection(kafka_bootstrap)
    ensure_topic(connection, TopicSpec(ledger_topic, 1, 1), timeout_ms=15_000)
    committed: list[LedgerRecord] = []
    prev_hash = GENESIS_HASH
    for compression in (None, "gzip"):
        producer = connection.producer(
            transactional_id=f"{ledger_topic}.{compression}", compression_type=compression
        )
        producer.init_transactions()
        for number, count in enumerate((40, 25, 300, 1, 60)):
            records = chained(len(committed) + 1, count, prev_hash)
            producer.begin_transaction()
            for record in records:
                producer.send(
                    ledger_topic,
                    key=record.key(),
                    value=b"aborted" if number % 2 else record.state,
                    headers=record.headers(),
                    partition=0,
                )
            producer.flush()
            if number % 2:
                producer.abort_transaction()
            else:
                producer.commit_transaction()
                committed += records
                prev_hash = records[-1].hash
        producer.close()
    yield committed


def test_the_reader_reads_the_committed_records_as_the_consumer_does(
    kafka_bootstrap: str, ledger_topic: str, transactions: list[LedgerRecord]
) -> None:
    messages = read_topic(kafka_bootstrap, ledger_topic, "read_committed")
    expected = [(m.offset, LedgerRecord.decode(m.key, m.value, m.headers)) for m in messages]
    assert [record for _, record in expected] == transactions
    everything = read_topic(kafka_bootstrap, ledger_topic, "read_uncommitted")
    assert b"aborted" in {m.value for m in everything}, "the aborted records reached the log"
    reader = LedgerReader(KafkaConnection(kafka_bootstrap), ledger_topic, RecordCache(0))
    parsed, by_library = (
        LedgerPartitionRecords.parsed_batches,
        LedgerPartitionRecords.library_batches,
    )
    try:
        end = reader.end_offset()
        assert list(reader.scan(0, end)) == expected
        # From inside a batch, and a batch's worth of scattered offsets read by offset.
        assert list(reader.scan(expected[55][0], end)) == expected[55:]
        wanted = dict(expected[3::37])
        assert reader.read(list(wanted)) == wanted
        # The broker's plain batches went through the parser, the gzip ones the library's path.
        assert LedgerPartitionRecords.parsed_batches > parsed
        assert LedgerPartitionRecords.library_batches > by_library
    finally:
        reader.close()


def test_a_consumer_with_deserializers_is_refused(kafka_bootstrap: str) -> None:
    consumer = KafkaConnection(kafka_bootstrap).consumer(key_deserializer=_Keys())
    try:
        with pytest.raises(TypeError, match="no deserializers"):
            use_ledger_records(consumer)
    finally:
        consumer.close()


class _Keys(Deserializer):  # type: ignore[misc]
    def deserialize(self, topic: str, headers: Any, data: bytes) -> bytes:
        return data
