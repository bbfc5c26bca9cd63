"""The aggregate index raises its own errors (the library's persistence families), never
sqlite3's, and keeps the file's state when it does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, ProgrammingError

import store.index
from store.index import AggregateIndex, IndexConflict, IndexMisuse, IndexUnavailable
from tests.unit.store.test_index import chain


def test_a_file_that_is_not_an_index_is_unavailable_and_says_it_may_be_deleted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"not an sqlite file at all, but long enough to have a header" * 20)
    with pytest.raises(IndexUnavailable, match="delete the file") as raised:
        AggregateIndex(path)
    assert isinstance(raised.value, OperationalError)
    assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)
    assert str(path) in str(raised.value)


def test_a_write_lock_held_past_the_timeout_is_unavailable_and_nothing_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.index, "LOCK_TIMEOUT_S", 0.2)
    path = tmp_path / "ledger.sqlite3"
    index = AggregateIndex(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(IndexUnavailable, match="locked") as raised:
            index.apply(chain(2), 4)
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert index.count() == 0
    index.apply(chain(2), 4)  # usable again once the lock is released
    assert index.count() == 2
    index.close()


def test_use_after_close_is_misuse(tmp_path: Path) -> None:
    index = AggregateIndex(tmp_path / "ledger.sqlite3")
    index.close()
    with pytest.raises(IndexMisuse) as raised:
        index.state()
    assert isinstance(raised.value, ProgrammingError)


def test_a_conflict_is_the_librarys_integrity_error(tmp_path: Path) -> None:
    index = AggregateIndex(tmp_path / "ledger.sqlite3")
    with pytest.raises(IntegrityError):
        index.apply(chain(3)[1:], 6)  # does not start at notification 1
    assert issubclass(IndexConflict, IntegrityError)
    index.close()
