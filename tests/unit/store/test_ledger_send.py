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
    assert callable(TransactionManager.is_partition_added)
    assert callable(TransactionManager.is_partition_pending_add)
    assert callable(Sender.wakeup)
