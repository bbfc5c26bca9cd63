"""The producer's private parts that store/ledger_send.py uses are still what it expects:
a kafka-python release that changes them fails here, not as a writer that retries for ever."""

from __future__ import annotations

import inspect

from kafka.producer.record_accumulator import RecordAccumulator
from kafka.producer.sender import Sender
from kafka.producer.transaction_manager import TransactionManager


def test_the_accumulator_appends_as_send_does() -> None:
    parameters = list(inspect.signature(RecordAccumulator.append).parameters)
    assert parameters[:6] == ["self", "tp", "timestamp_ms", "key", "value", "headers"]
    assert "(future, batch_is_full, new_batch_created, abort_for_new_batch)" in (
        inspect.getdoc(RecordAccumulator.append) or ""
    )


def test_the_transaction_and_sender_parts_exist() -> None:
    parameters = list(
        inspect.signature(TransactionManager.maybe_add_partition_to_transaction).parameters
    )
    assert parameters == ["self", "topic_partition"]
    assert callable(Sender.wakeup)


def test_the_open_batch_takes_the_ledger_s_builder_and_writes_the_same_bytes() -> None:
    from kafka import TopicPartition
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

    from store.ledger_batch import LedgerBatchBuilder
    from store.ledger_send import _quicken

    partition = TopicPartition("ledger", 0)
    values = [b"v%05d" % n + bytes(n * 37 % 900) for n in range(200)]
    headers = [("evledger.format", b"1"), ("evledger.hash", b"ab" * 32)]
    built = []
    for quickened in (False, True):
        accumulator = RecordAccumulator(batch_size=8 * 1024)
        for number, value in enumerate(values):
            _future, _full, new_batch, _ = accumulator.append(
                partition, 1_767_323_045_000 + number, b"key", value, headers
            )
            if new_batch and quickened:
                _quicken(accumulator, partition)
        batches = list(accumulator._batches[partition])
        assert len(batches) > 5
        kinds = {type(batch.records._builder) for batch in batches}
        assert kinds == ({LedgerBatchBuilder} if quickened else {DefaultRecordBatchBuilder})
        for batch in batches:
            batch.records.close()
        built.append([bytes(batch.records.buffer()) for batch in batches])
    assert built[0] == built[1]
    read = [record.value for batch in built[1] for record in DefaultRecordBatch(batch)]
    assert read == values


def test_a_closed_batch_is_left_as_it_is() -> None:
    """A closed batch (one the sender drained and put back for a retry) has no builder:
    _quicken must not give it one, nor change its bytes."""
    from kafka import TopicPartition

    from store.ledger_send import _quicken

    partition = TopicPartition("ledger", 0)
    accumulator = RecordAccumulator(batch_size=8 * 1024)
    _quicken(accumulator, partition)  # no batch yet: nothing to do
    accumulator.append(partition, 1_767_323_045_000, b"key", b"value", [])
    (batch,) = accumulator._batches[partition]
    batch.records.close()
    closed = bytes(batch.records.buffer())
    _quicken(accumulator, partition)
    assert batch.records._builder is None
    assert bytes(batch.records.buffer()) == closed
