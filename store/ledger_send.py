"""Queueing a transaction's ledger records in kafka-python's producer, a third cheaper
than a `send()` per record.

The first record goes through `send()`, which checks it, waits for the topic's metadata and
adds partition 0 to the transaction. The others go straight to the producer's record
accumulator, where `send()` would put them too: same partition and transaction, bytes keys
and values, (str, bytes) headers built here, so `send()`'s per-record checks, serialiser
calls, partition look-up and size estimate would only repeat what is known (they were a
third of the writer thread's CPU). Each batch the ledger's records open is then handed to
``store/ledger_batch.py``'s builder, which writes the same record bytes for a third of the
library builder's cost. This is the one module that knows the producer's private parts; the
pinned kafka-python minor version (pyproject.toml) and tests/unit/store/test_ledger_send.py
keep them what this module expects.
"""

from __future__ import annotations

from typing import Any

from store.ledger_batch import LedgerBatchBuilder
from store.records import LedgerRecord

# A value this large takes `send()`, whose size checks may refuse it: far below the
# writer's largest request (store/writer.py MAX_REQUEST_BYTES), so a batch of smaller ones
# appended here can never be refused for its size.
CHECKED_VALUE_BYTES = 1024 * 1024


def queue_ledger_records(
    producer: Any, topic: str, records: list[LedgerRecord], signature: list[tuple[str, bytes]]
) -> list[Any]:
    """Queue ``records`` on partition 0 of ``topic`` in the open transaction, the last one
    with the transaction's ``signature`` headers; their futures, in order.

    Each record's headers are built just before it is queued and freed once encoded: built
    for the whole transaction first, they were thousands of objects alive at once, and the
    garbage collections they set off were charged to the writer."""
    from kafka import TopicPartition

    futures: list[Any] = []
    last = len(records) - 1
    partition = TopicPartition(topic, 0)
    accumulator = producer._accumulator
    # Whether this call has woken the sender yet (below: once per batch, not per record).
    woken = False
    for number, record in enumerate(records):
        headers = record.headers()
        if number == last:
            headers += signature
        if number == 0 or len(record.state) > CHECKED_VALUE_BYTES:
            future = producer.send(
                topic, key=record.key(), value=record.state, headers=headers, partition=0
            )
            if future.failed():
                # send() answers some failures (metadata refused) with a failed future and
                # without adding the partition to the transaction: stop here, so the
                # transaction is aborted rather than left waiting on records it never sends.
                raise future.exception
            _quicken(accumulator, partition)
        else:
            future, full, new_batch, _aborted = accumulator.append(
                partition, None, record.key(), record.state, headers
            )
            # send() wakes the sender (a byte written to its socket pair, and a turn of its
            # loop) when the batch is full or new; but "full" also means "an older batch is
            # still queued", true of most appends while a transaction's records outrun its
            # sends: a wake-up per record, 7% of the writer process's CPU with the sender's
            # turns. Once per batch is what the sender can use: woken, it takes every batch
            # ready, and after that a batch waits only for the answer that wakes it anyway.
            if new_batch or (full and not woken):
                producer._sender.wakeup()
                woken = True
            if new_batch:
                _quicken(accumulator, partition)
        futures.append(future)
    # The partition can leave the transaction while its records are queued: an epoch bump
    # (an OutOfOrderSequence or UnknownProducerId answer, KIP-360) empties the transaction
    # and ends it. Asked once here rather than before every record, it raises what send()
    # would have (IllegalStateError, or the manager's error) at once, not as a flush that
    # waits out its timeout on records the sender will never drain.
    producer._transaction_manager.maybe_add_partition_to_transaction(partition)
    return futures


def _quicken(accumulator: Any, partition: Any) -> None:
    """Give the partition's last batch, if still open, the ledger's record builder.

    Under the partition's lock, where the sender closes and drains batches: a batch it took
    meanwhile is left alone, and a closed one (a retried batch put back) has no builder
    left, as closing it drops it, so the builder's type is the only check needed."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    with accumulator._tp_lock(partition):
        batches = accumulator._batches.get(partition)
        if not batches:
            return
        records = batches[-1].records
        builder = records._builder
        if type(builder) is DefaultRecordBatchBuilder:
            records._builder = LedgerBatchBuilder.taking_over(builder)
