"""store/ledger_send.py wakes the producer's sender once per batch of ledger records, not
once per record (send() does, while an older batch is still queued), and every record
still reaches the topic in the transaction."""

from __future__ import annotations

from typing import Any

from store.ledger_send import queue_ledger_records
from tests.integration.store.conftest import chained_records, ledger_producer
from tests.kafka_topics import read_topic

RECORDS = 600
BATCH_BYTES = 16 * 1024  # about 30 records of 500 bytes: twenty batches or so


def _counting_wakeups(producer: Any) -> list[int]:
    """The sender's wake-ups from now on, counted (and made as before)."""
    sender = producer._sender
    wakeup = sender.wakeup
    count = [0]

    def counted() -> None:
        count[0] += 1
        wakeup()

    sender.wakeup = counted
    return count


def test_the_sender_is_woken_once_per_batch_and_every_record_lands(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = ledger_producer(kafka_bootstrap, kafka_topic, BATCH_BYTES)
    try:
        producer.init_transactions()
        records = chained_records(RECORDS, 300)
        producer.begin_transaction()
        wakeups = _counting_wakeups(producer)
        futures = queue_ledger_records(producer, kafka_topic, records, [])
        queued = wakeups[0]
        producer.commit_transaction()
    finally:
        producer.close()
    batches = {id(future._produce_future) for future in futures}
    assert len(batches) >= 10
    # send()'s for the first record (the topic added, a round or two of its metadata wait,
    # its batch), then one per batch opened after it, and perhaps one when the first batch
    # filled: not one per record.
    assert len(batches) - 1 <= queued <= len(batches) + 4
    landed = read_topic(kafka_bootstrap, kafka_topic, "read_committed")
    assert [record.value for record in landed] == [record.state for record in records]
