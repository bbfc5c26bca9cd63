"""The index's stored layout (UUID ids as their 16 bytes, any other id as its text) and its
file: named for the layout and the machine's boot, unsynced only where the boot is known,
and the files no process can use any more removed."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from store import index as index_module
from store.index import AggregateIndex, index_file
from store.kafka_clients import KafkaConnection
from store.records import GENESIS_HASH, LedgerRecord
from store.writer_process import WriterSpec


def records_of(*originators: str) -> list[tuple[int, LedgerRecord]]:
    """One event (version 1) of each aggregate, chained, at offsets 0, 1, 2, ..."""
    records: list[tuple[int, LedgerRecord]] = []
    prev = GENESIS_HASH
    for number, originator in enumerate(originators, start=1):
        hashed = number.to_bytes(32, "big")
        records.append((number - 1, LedgerRecord(number, originator, 1, "t", b"", prev, hashed)))
        prev = hashed
    return records


def stored_ids(path: Path) -> list[tuple[str, object]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT typeof(originator_id), originator_id FROM events ORDER BY notification_id"
        )
        return [(str(kind), value) for kind, value in rows]


def test_a_uuid_id_is_stored_as_its_bytes_and_found_by_its_text(tmp_path: Path) -> None:
    aggregate = uuid.uuid4()
    index = AggregateIndex(tmp_path / "i.sqlite3")
    index.apply(records_of(str(aggregate)), 1)
    assert index.last_versions([str(aggregate)]) == {str(aggregate): 1}
    assert [event.notification_id for event in index.events(str(aggregate))] == [1]
    index.apply(records_of(str(aggregate)), 1)  # applied again: recognised as the same record
    index.close()
    assert stored_ids(tmp_path / "i.sqlite3") == [("blob", aggregate.bytes)]


def test_aggregates_named_by_uuid_are_found_as_by_their_text(tmp_path: Path) -> None:
    named = [uuid.uuid4() for _ in range(3)]
    index = AggregateIndex(tmp_path / "i.sqlite3")
    index.apply(records_of(*map(str, named[:2])), 2)
    assert index.last_uuid_versions(named) == {named[0]: 1, named[1]: 1}
    assert index.last_versions(map(str, named)) == {str(named[0]): 1, str(named[1]): 1}
    index.close()


def test_ids_that_are_not_a_uuids_canonical_text_stay_text_and_distinct(
    tmp_path: Path,
) -> None:
    aggregate = uuid.uuid4()
    canonical = str(aggregate)
    others = [
        canonical.upper(),  # the same UUID spelled otherwise is another aggregate id
        aggregate.hex,
        canonical[:8] + " " + canonical[9:],  # whitespace where a dash goes
        canonical[:-2] + "  ",  # whitespace that bytes.fromhex skips: 15 bytes
        "session-42",
    ]
    index = AggregateIndex(tmp_path / "i.sqlite3")
    index.apply(records_of(canonical, *others), len(others) + 1)
    assert index.last_versions([canonical, *others, "missing"]) == dict.fromkeys(
        [canonical, *others], 1
    )
    for number, originator in enumerate([canonical, *others], start=1):
        assert [event.notification_id for event in index.events(originator)] == [number]
    index.close()
    assert stored_ids(tmp_path / "i.sqlite3") == [("blob", aggregate.bytes)] + [
        ("text", other) for other in others
    ]


def index_dir_in_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, boot_id: str | None) -> Path:
    """An empty index directory, the machine's boot read as ``boot_id`` (None: a machine
    that cannot tell)."""
    path = tmp_path / f"boot_id-{boot_id}"
    if boot_id is not None:
        path.write_text(boot_id + "\n")
    monkeypatch.setattr(index_module, "BOOT_ID_PATH", str(path))
    directory = tmp_path / "index"
    directory.mkdir()
    return directory


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"")


EARLIER, THIS = str(uuid.uuid4()), str(uuid.uuid4())


def test_where_the_boot_is_known_the_file_is_this_boots_and_unsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = index_dir_in_boot(tmp_path, monkeypatch, THIS)
    file = index_file(directory, "evledger.ledger")
    assert file.path == directory / f"evledger.ledger@v2@{THIS}.sqlite3"
    assert not file.synced
    index = AggregateIndex(file.path, synced=file.synced)
    assert index._db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF
    index.close()


def test_files_of_an_earlier_boot_or_layout_are_removed_and_no_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = index_dir_in_boot(tmp_path, monkeypatch, THIS)
    stale = [
        f"evledger.ledger@v2@{EARLIER}.sqlite3",
        f"evledger.ledger@v2@{EARLIER}.sqlite3-wal",
        f"evledger.ledger@v2@{EARLIER}.sqlite3-shm",
        "evledger.ledger.sqlite3",  # an older evledger's (text ids)
        "evledger.ledger.sqlite3-wal",
    ]
    kept = [
        f"evledger.ledger@v2@{THIS}.sqlite3",
        f"evledger.ledger@v2@{THIS}.sqlite3-wal",
        "evledger.ledger@v2.sqlite3",  # a process that cannot read the boot syncs its own
        f"evledger.ledger.1@v2@{EARLIER}.sqlite3",  # a shard's, for its own opener
        "evledger.ledger.1.sqlite3",
        "evledger.ledger2.sqlite3",
    ]
    touch(directory, *stale, *kept)
    index_file(directory, "evledger.ledger")
    assert sorted(path.name for path in directory.iterdir()) == sorted(kept)


@pytest.mark.parametrize("boot_id", [THIS, None])
def test_no_topic_opens_or_removes_another_topics_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, boot_id: str | None
) -> None:
    """Topics whose names extend another's (a shard's, "a.v2", "a.v2.<boot>") each keep
    their own live file, whichever opens first."""
    directory = index_dir_in_boot(tmp_path, monkeypatch, boot_id)
    topics = ["a", "a.v2", f"a.v2.{THIS}", "a.1", "a.10", "a-b_c", "x" * 249, "x" * 248]
    opened = [AggregateIndex(index_file(directory, topic).path) for topic in topics]
    for topic in reversed(topics):
        index_file(directory, topic)
    paths = [Path(index.path) for index in opened]
    assert len(set(paths)) == len(topics)
    assert all(path.exists() for path in paths)
    assert all(len(path.name) + len("-journal") <= 255 for path in paths)
    for index in opened:
        index.close()


def test_where_the_boot_is_unknown_the_file_is_synced_and_no_boots_file_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = index_dir_in_boot(tmp_path, monkeypatch, None)
    touch(directory, f"t@v2@{EARLIER}.sqlite3", "t.sqlite3")
    file = index_file(directory, "t")
    assert file == index_module.IndexFile(directory / "t@v2.sqlite3", synced=True)
    assert [path.name for path in directory.iterdir()] == [f"t@v2@{EARLIER}.sqlite3"]
    index = AggregateIndex(file.path, synced=file.synced)
    assert index._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    index.close()


@pytest.mark.parametrize("synced", [True, False])
def test_the_writer_process_opens_the_index_synced_as_the_parent_does(
    tmp_path: Path, synced: bool
) -> None:
    spec = WriterSpec(
        connection=KafkaConnection("127.0.0.1:9"),
        topic="t",
        transactional_id="t.writer",
        index_path=tmp_path / "i.sqlite3",
        index_synced=synced,
        index_cache_kib=64,
        contiguous_versions=True,
        timeout_s=1.0,
        max_events_per_transaction=10,
        signer=None,
    )
    index = spec.open_index()
    assert index._db.execute("PRAGMA synchronous").fetchone()[0] == (1 if synced else 0)
    assert (index.path, index.synced) == (str(spec.index_path), synced)
    index.close()
