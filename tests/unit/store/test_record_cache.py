"""The record cache: bounded, least recently used out, and a record given unbuilt (the
writer process's answers) read back as the record it describes."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from store.reader import RecordCache, Unbuilt
from store.records import GENESIS_HASH, LedgerRecord


def chain(count: int) -> list[LedgerRecord]:
    records, prev = [], GENESIS_HASH
    for notification_id in range(1, count + 1):
        event = StoredEvent(uuid4(), 1, "domain.payment:Payment.Created", b'{"a":1}')
        record = LedgerRecord.chained(prev, notification_id, event)
        records.append(record)
        prev = record.hash
    return records


def unbuilt(record: LedgerRecord) -> Unbuilt:
    return (
        record.prev_hash,
        record.notification_id,
        record.originator_id,
        record.originator_version,
        record.topic,
        record.state,
        record.hash,
    )


def test_an_unbuilt_record_reads_back_as_the_record_and_stays_built() -> None:
    records = chain(3)
    cache = RecordCache(10)
    cache.put_many((offset, unbuilt(record)) for offset, record in enumerate(records))
    for offset, record in enumerate(records):
        read = cache.get(offset)
        assert read == record
        assert read is not None and read.verify()
        assert cache.get(offset) is read  # built once
    assert cache.get(99) is None


def test_the_least_recently_used_go_first_whatever_their_form() -> None:
    records = chain(4)
    cache = RecordCache(3)
    cache.put(0, records[0])
    cache.put_many([(1, unbuilt(records[1])), (2, records[2])])
    assert cache.get(0) == records[0]  # now the most recently used
    cache.put_many([(3, unbuilt(records[3]))])
    assert cache.get(1) is None
    assert [cache.get(offset) for offset in (0, 2, 3)] == [records[0], records[2], records[3]]
    cache.put(2, records[2])  # again: moved to the end, nothing dropped
    assert all(cache.get(offset) is not None for offset in (0, 2, 3))
    none_kept = RecordCache(0)
    none_kept.put_many([(0, unbuilt(records[0]))])
    assert none_kept.get(0) is None
