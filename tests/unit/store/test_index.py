"""The aggregate index shared by several processes: it only grows, by whole chain links."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.index import AggregateIndex, IndexConflict
from store.records import GENESIS_HASH, LedgerRecord


def chain(count: int, topic: str = "t", originator: str = "a") -> list[tuple[int, LedgerRecord]]:
    """(offset, record) for notifications 1..count of one aggregate, each record followed by
    a transaction marker (so offsets are 2 * id - 2)."""
    records: list[tuple[int, LedgerRecord]] = []
    prev = GENESIS_HASH
    for number in range(1, count + 1):
        hashed = number.to_bytes(32, "big")
        record = LedgerRecord(number, originator, number, topic, b"", prev, hashed)
        records.append((2 * number - 2, record))
        prev = hashed
    return records


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[AggregateIndex, AggregateIndex]]:
    """Two connections to one index file, as a writer and a projector process open it."""
    path = tmp_path / "ledger.sqlite3"
    writer, reader = AggregateIndex(path), AggregateIndex(path)
    yield writer, reader
    writer.close()
    reader.close()


def test_applying_what_another_process_applied_is_a_no_op(
    two_processes: tuple[AggregateIndex, AggregateIndex],
) -> None:
    writer, reader = two_processes
    records = chain(3)
    writer.apply(records, 6)
    reader.apply(records[:2], 4)  # a reader that read an older end: nothing moves back
    assert writer.count() == 3
    assert writer.position() == 6
    assert writer.last_versions(["a"]) == {"a": 3}
    reader.apply(records, 6)
    assert reader.state() == writer.state()


def test_overlapping_apply_adds_only_the_new_records(
    two_processes: tuple[AggregateIndex, AggregateIndex],
) -> None:
    writer, reader = two_processes
    records = chain(5)
    writer.apply(records[:2], 4)
    reader.apply(records, 10)
    assert writer.count() == 5
    assert writer.state().last_hash == records[-1][1].hash
    assert writer.position() == 10


def test_records_that_do_not_continue_the_chain_are_refused(
    two_processes: tuple[AggregateIndex, AggregateIndex],
) -> None:
    writer, reader = two_processes
    records = chain(4)
    writer.apply(records[:2], 4)
    with pytest.raises(IndexConflict):
        reader.apply(records[3:], 8)  # skips notification 3
    other = chain(3, originator="b")
    with pytest.raises(IndexConflict):
        reader.apply(other, 6)  # another chain's notifications 1 and 2
    assert writer.count() == 2
    assert writer.position() == 4


def test_a_topic_added_by_another_process_is_found(
    two_processes: tuple[AggregateIndex, AggregateIndex],
) -> None:
    writer, reader = two_processes
    assert reader.notifications(1, 10, topics=["new.Event"]) == []  # caches nothing
    records = chain(2, topic="new.Event")
    writer.apply(records[:1], 2)
    reader.apply(records, 4)  # the topic is in the file, not in this connection's cache
    assert [e.notification_id for e in reader.notifications(1, 10, topics=["new.Event"])] == [
        1,
        2,
    ]
    assert [e.notification_id for e in writer.notifications(1, 10, topics=["new.Event"])] == [
        1,
        2,
    ]


def test_last_versions_of_many_aggregates_in_one_lookup(tmp_path: Path) -> None:
    index = AggregateIndex(tmp_path / "ledger.sqlite3")
    records: list[tuple[int, LedgerRecord]] = []
    prev = GENESIS_HASH
    for number in range(1, 1201):
        hashed = number.to_bytes(32, "big")
        originator = f"agg-{(number - 1) // 2}"
        version = 2 - number % 2
        records.append((number, LedgerRecord(number, originator, version, "t", b"", prev, hashed)))
        prev = hashed
    index.apply(records, 1201)
    wanted = [f"agg-{n}" for n in range(0, 700)] + ["missing"]
    found = index.last_versions(wanted)
    assert len(found) == 600
    assert set(found.values()) == {2}
    index.close()


def test_the_page_cache_stays_at_its_size_as_the_index_grows(tmp_path: Path) -> None:
    index = AggregateIndex(tmp_path / "ledger.sqlite3", cache_kib=64)
    try:
        records = chain(5_000)
        for start in range(0, len(records), 500):
            batch = records[start : start + 500]
            index.apply(batch, batch[-1][0] + 2)
        pages = index._db.execute("PRAGMA page_count").fetchone()[0]
        page_size = index._db.execute("PRAGMA page_size").fetchone()[0]
        # The file outgrew the cache, and the cache is still bounded by the same size.
        assert pages * page_size > 64 * 1024
        assert index._db.execute("PRAGMA cache_size").fetchone()[0] == -64
    finally:
        index.close()
