"""An epoch bump (KIP-360) while store/ledger_send.py queues a transaction's records: the
sender bumps the epoch on an OutOfOrderSequence or UnknownProducerId answer, which ends the
transaction and empties its partitions. The queueing must then fail at once, with the error
`send()` gives, not leave the records waiting for a flush that can only time out."""

from __future__ import annotations

import time
from typing import Any

import pytest

from store.ledger_send import queue_ledger_records
from tests.integration.store.conftest import chained_records, ledger_producer

RECORDS = 300
BUMP_AT = 100


def _bump_the_epoch_midway(producer: Any) -> list[int]:
    """Bump the epoch, as the sender does, before the BUMP_AT-th record appended straight to
    the accumulator, and wait until the broker has answered; the appends made, counted."""
    accumulator = producer._accumulator
    manager = producer._transaction_manager
    append = accumulator.append
    appended = [0]

    def bumping_append(*args: Any, **kwargs: Any) -> Any:
        appended[0] += 1
        if appended[0] == BUMP_AT:
            manager.bump_producer_id_and_epoch()
            producer._sender.wakeup()
            deadline = time.monotonic() + 15
            while manager.is_bumping_epoch():
                assert time.monotonic() < deadline, "the epoch bump got no answer"
                time.sleep(0.01)
        return append(*args, **kwargs)

    accumulator.append = bumping_append
    return appended


def test_a_bump_while_queueing_fails_the_queueing_as_send_would(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    from kafka.errors import IllegalStateError, KafkaError

    producer = ledger_producer(kafka_bootstrap, kafka_topic, 512 * 1024, retry_backoff_ms=5)
    try:
        producer.init_transactions()
        records = chained_records(RECORDS, 200)
        appended = _bump_the_epoch_midway(producer)
        producer.begin_transaction()
        # The manager's refusal: "Cannot call send in state READY" (IllegalStateError) if
        # the bump emptied the transaction first, or its KafkaError naming the batch the
        # broker refused (InvalidTxnState) if the sender raced the partition back in first.
        with pytest.raises(KafkaError) as raised:
            queue_ledger_records(producer, kafka_topic, records, [("evledger.sig", b"s")])
        assert appended[0] >= BUMP_AT  # the bump did happen mid-queue
        # What a send() per record, once the partition left, raises.
        with pytest.raises(KafkaError) as sent:
            producer.send(kafka_topic, key=b"k", value=b"v", partition=0)
        assert type(raised.value) is type(sent.value)
        assert str(raised.value) == str(sent.value)
        assert isinstance(raised.value, IllegalStateError) or "InvalidTxnState" in str(raised.value)
    finally:
        # The records queued after the bump belong to no transaction and would wait out
        # close()'s flush: end them first (the writer drops such a producer likewise).
        producer._accumulator.abort_batches(KafkaError("the test is over"))
        producer.close(timeout=1)
