"""The index's stored layout: UUID ids as their 16 bytes, any other id as its text, and a
file of an older layout emptied (to be caught up from the topic again)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from store import index as index_module
from store.index import AggregateIndex
from store.records import GENESIS_HASH, LedgerRecord


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
        canonical[:-2] + " 0",  # whitespace that bytes.fromhex would skip
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


@pytest.mark.parametrize("layout", [None, "1"])
def test_a_file_of_another_layout_is_emptied_to_be_caught_up_again(
    tmp_path: Path, layout: str | None
) -> None:
    path = tmp_path / "i.sqlite3"
    with sqlite3.connect(path) as db:  # as evledger before the layout's version wrote it
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE topics (id INTEGER PRIMARY KEY, topic TEXT NOT NULL UNIQUE);
            CREATE TABLE events (notification_id INTEGER PRIMARY KEY,
                record_offset INTEGER NOT NULL, originator_id TEXT NOT NULL,
                originator_version INTEGER NOT NULL, topic_id INTEGER NOT NULL);
            CREATE UNIQUE INDEX events_by_originator ON events (originator_id, originator_version);
            INSERT INTO topics VALUES (1, 't');
            INSERT INTO events VALUES (1, 0, '5f0c1c5e-1f4b-4c8e-9a55-6d1d2c3b4a59', 1, 1);
            INSERT INTO meta VALUES ('position', '1'), ('last_hash', '00');
            """
        )
        if layout is not None:
            db.execute("INSERT INTO meta VALUES ('layout', ?)", (layout,))
    index = AggregateIndex(path)
    assert index.count() == 0
    assert index.position() == 0
    assert index.last_versions(["5f0c1c5e-1f4b-4c8e-9a55-6d1d2c3b4a59"]) == {}
    index.close()


def test_the_layout_survives_a_reset_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    aggregate = str(uuid.uuid4())
    index = AggregateIndex(path)
    index.apply(records_of(aggregate), 1)
    index.close()
    reopened = AggregateIndex(path)  # the same layout: nothing emptied
    assert reopened.last_versions([aggregate]) == {aggregate: 1}
    reopened.reset()
    with sqlite3.connect(path) as db:  # a reset file is still known as this boot's
        assert {key for (key,) in db.execute("SELECT key FROM meta")} == {"layout", "boot"}
    reopened.apply(records_of(aggregate), 1)
    reopened.close()
    again = AggregateIndex(path)
    assert again.count() == 1
    again.close()


def test_a_file_written_before_the_machine_restarted_is_emptied(tmp_path: Path) -> None:
    """Written unsynced, it may have lost what the operating system held at the restart."""
    path = tmp_path / "i.sqlite3"
    aggregate = str(uuid.uuid4())
    index = AggregateIndex(path)
    index.apply(records_of(aggregate), 1)
    index.close()
    with sqlite3.connect(path) as db:  # as the kernel of an earlier boot left it
        db.execute("UPDATE meta SET value = 'an-earlier-boot' WHERE key = 'boot'")
        assert db.total_changes == 1
    reopened = AggregateIndex(path)
    assert reopened.count() == 0
    assert reopened.last_versions([aggregate]) == {}
    reopened.apply(records_of(aggregate), 1)  # caught up again, and kept from now on
    reopened.close()
    again = AggregateIndex(path)
    assert again.count() == 1
    again.close()


def test_unsynced_only_where_the_machine_can_tell_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = AggregateIndex(tmp_path / "here.sqlite3")
    assert index._db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF
    index.close()
    monkeypatch.setattr(index_module, "BOOT_ID_PATH", str(tmp_path / "no-such-file"))
    elsewhere = AggregateIndex(tmp_path / "elsewhere.sqlite3")
    assert elsewhere._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    aggregate = str(uuid.uuid4())
    elsewhere.apply(records_of(aggregate), 1)
    elsewhere.close()
    reopened = AggregateIndex(tmp_path / "elsewhere.sqlite3")  # no boot recorded: kept
    assert reopened.count() == 1
    reopened.close()
