"""What every read-model ``Database`` adapter must do, written once: each backend's test
module subclasses ``DatabaseTestCase`` and says how to open its database (the way the
eventsourcing library's ``tests.persistence`` test cases are subclassed per recorder)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from projections.databases.errors import (
    DatabaseBusy,
    DatabaseIntegrityError,
    DatabaseProgrammingError,
    DatabaseUnavailable,
    DatabaseValueError,
    MissingTable,
    ReadModelDatabaseError,
)
from projections.databases.port import MAX_PARAMS, Database, for_keys, upsert

# One column of every type the read models declare.
ITEMS = """CREATE TABLE items (
    item_key {text} PRIMARY KEY,
    count {bigint},
    line_no {int},
    automatic {bool},
    created_at {ts},
    started_at_local {local_ts},
    energy_kwh {kwh},
    vat_rate {decimal},
    line_items {json}
)"""
COLUMNS = (
    "item_key",
    "count",
    "line_no",
    "automatic",
    "created_at",
    "started_at_local",
    "energy_kwh",
    "vat_rate",
    "line_items",
)
INSERT = f"INSERT INTO items ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"

BERLIN_SUMMER = timezone(timedelta(hours=2))
FULL = {
    "item_key": "a",
    "count": 2**63 - 1,
    "line_no": -(2**31),
    "automatic": True,
    "created_at": datetime(2026, 3, 2, 10, 15, 30, 123456, tzinfo=BERLIN_SUMMER),
    "started_at_local": datetime(2026, 3, 2, 10, 15, 30),
    "energy_kwh": Decimal("12345678901.234"),
    "vat_rate": Decimal("0.190000"),
    "line_items": [{"component": "energy", "quantity": Decimal("12.345"), "amount_minor": 9}],
}
EMPTY = dict.fromkeys(COLUMNS) | {"item_key": "b", "automatic": False}


def instant(value: datetime) -> datetime:
    """A stored timestamp as an aware instant: naive ones are UTC (the DuckDB convention)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def decoded(value: Any) -> Any:
    """JSON as a value: a backend may return the document or its text."""
    return json.loads(value) if isinstance(value, str) else value


class DatabaseTestCase(ABC):
    """The ``Database`` port's contract; subclasses name the backend."""

    @abstractmethod
    def create_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        """A new, empty database of this backend, private to the test."""

    @abstractmethod
    def unavailable_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
        """A database of this backend that cannot be reached or opened."""

    @abstractmethod
    def held_elsewhere(
        self, db: Database, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AbstractContextManager[Database]:
        """While open: another connection or process holds what a write to ``items``
        needs; yields a database handle (with a short wait) whose write must be busy."""

    @pytest.fixture
    def db(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
        db = self.create_database(request, tmp_path)
        db.execute(ITEMS)
        yield db
        db.close()

    def insert(self, db: Database, *rows: dict[str, Any]) -> None:
        for row in rows:
            db.execute(INSERT, [db.param(row[column]) for column in COLUMNS])

    def stored(self, db: Database) -> dict[str, dict[str, Any]]:
        return {row["item_key"]: row for row in db.execute("SELECT * FROM items")}

    # --- values ----------------------------------------------------------------------

    def test_every_column_type_round_trips(self, db: Database) -> None:
        self.insert(db, FULL, EMPTY)
        full, empty = self.stored(db)["a"], self.stored(db)["b"]
        assert list(full) == list(COLUMNS)  # rows are dicts in the table's column order
        assert full["count"] == 2**63 - 1 and isinstance(full["count"], int)
        assert full["line_no"] == -(2**31)
        assert full["automatic"] is True and empty["automatic"] is False
        assert instant(full["created_at"]) == FULL["created_at"]
        assert full["started_at_local"].replace(tzinfo=None) == FULL["started_at_local"]
        assert full["energy_kwh"] == Decimal("12345678901.234")
        assert isinstance(full["energy_kwh"], Decimal) and isinstance(full["vat_rate"], Decimal)
        assert full["vat_rate"] == Decimal("0.19")
        # Decimals inside JSON are kept exact, as strings.
        assert decoded(full["line_items"]) == [
            {"component": "energy", "quantity": "12.345", "amount_minor": 9}
        ]
        assert {
            k: v for k, v in empty.items() if k not in ("item_key", "automatic")
        } == dict.fromkeys(set(COLUMNS) - {"item_key", "automatic"})

    def test_timestamps_compare_and_sort_as_instants(self, db: Database) -> None:
        moments = [datetime(2026, 3, 2, hour, tzinfo=BERLIN_SUMMER) for hour in (23, 1, 12)]
        for number, moment in enumerate(moments):
            self.insert(db, EMPTY | {"item_key": f"k{number}", "created_at": moment})
        rows = db.execute(
            "SELECT item_key FROM items WHERE created_at >= ? ORDER BY created_at",
            [db.param(datetime(2026, 3, 2, 10, tzinfo=UTC))],
        )
        assert [row["item_key"] for row in rows] == ["k2", "k0"]
        ordered = db.execute(
            "SELECT item_key FROM items WHERE created_at IS NOT NULL ORDER BY created_at"
        )
        assert [row["item_key"] for row in ordered] == ["k1", "k2", "k0"]

    def test_executemany_writes_every_row_and_execute_returns_them(self, db: Database) -> None:
        rows = [
            [db.param(value) for value in (EMPTY | {"item_key": f"k{n:04}", "count": n}).values()]
            for n in range(500)
        ]
        db.executemany(INSERT, rows)
        found = db.execute("SELECT item_key, count FROM items ORDER BY item_key")
        assert found == [{"item_key": f"k{n:04}", "count": n} for n in range(500)]
        assert db.execute("DELETE FROM items WHERE item_key = ? RETURNING item_key", ["k0001"]) == [
            {"item_key": "k0001"}
        ]

    def test_stream_returns_every_row_a_chunk_at_a_time(self, db: Database) -> None:
        rows = [
            [db.param(value) for value in (FULL | {"item_key": f"k{n:04}", "count": n}).values()]
            for n in range(23)
        ]
        db.executemany(INSERT, rows)
        query = "SELECT * FROM items ORDER BY item_key"
        expected = db.execute(query)
        assert len(expected) == 23
        assert list(db.stream(query, size=5)) == expected
        assert list(db.stream("SELECT * FROM items WHERE count < 0", size=5)) == []

    def test_update_returning_gives_the_changed_rows(self, db: Database) -> None:
        self.insert(db, EMPTY | {"count": 1})
        moved = db.execute(
            "UPDATE items SET count = ? WHERE item_key = ? AND count = ? RETURNING count",
            [2, "b", 1],
        )
        assert moved == [{"count": 2}]
        stale = db.execute(
            "UPDATE items SET count = ? WHERE item_key = ? AND count = ? RETURNING count",
            [3, "b", 1],
        )
        assert stale == []

    # --- transactions ----------------------------------------------------------------

    def test_a_transaction_commits_everything_inside_it(self, db: Database) -> None:
        with db.transaction():
            self.insert(db, FULL)
            self.insert(db, EMPTY)
        db.close()  # a new connection sees it
        assert sorted(self.stored(db)) == ["a", "b"]

    def test_an_error_inside_a_transaction_rolls_all_of_it_back(self, db: Database) -> None:
        class Stop(Exception):
            pass

        with pytest.raises(Stop), db.transaction():
            self.insert(db, FULL)
            raise Stop  # the caller's own error is not translated
        assert self.stored(db) == {}
        with pytest.raises(DatabaseIntegrityError), db.transaction():
            self.insert(db, EMPTY)
            self.insert(db, EMPTY)  # a duplicate key: the database refuses it
        assert self.stored(db) == {}
        with db.transaction():  # and the connection is usable afterwards
            self.insert(db, EMPTY)
        assert list(self.stored(db)) == ["b"]

    # --- upsert ----------------------------------------------------------------------

    def test_upsert_a_non_null_value_wins_and_a_null_never_clears(self, db: Database) -> None:
        upsert(db, "items", ["item_key"], {("a",): {"count": 1, "automatic": None}})
        upsert(db, "items", ["item_key"], {("a",): {"count": None, "automatic": True}})
        upsert(
            db,
            "items",
            ["item_key"],
            {("a",): {"vat_rate": Decimal("0.2"), "line_items": [1, 2]}, ("c",): {}},
        )
        rows = self.stored(db)
        assert sorted(rows) == ["a", "c"]  # a key-only row is inserted too
        assert rows["a"]["count"] == 1
        assert rows["a"]["automatic"] is True
        assert rows["a"]["vat_rate"] == Decimal("0.2")
        assert decoded(rows["a"]["line_items"]) == [1, 2]
        upsert(db, "items", ["item_key"], {("a",): {"count": 5}})
        assert self.stored(db)["a"]["count"] == 5  # a later non-null value replaces
        upsert(db, "items", ["item_key"], {("c",): {}})
        assert self.stored(db)["c"]["count"] is None  # a key-only row changes nothing

    def test_upsert_of_more_rows_than_one_statement_binds(self, db: Database) -> None:
        count = MAX_PARAMS // len(COLUMNS) + 100
        rows = {
            (f"k{n:05}",): {column: FULL[column] for column in COLUMNS if column != "item_key"}
            | {"count": n}
            for n in range(count)
        }
        upsert(db, "items", ["item_key"], rows)
        stored = db.execute("SELECT COUNT(*) AS n, SUM(count) AS total FROM items")[0]
        assert stored["n"] == count
        assert stored["total"] == count * (count - 1) // 2

    def test_for_keys_runs_one_statement_for_exactly_the_keys_given(self, db: Database) -> None:
        """Keys with what JSON escapes or a list's text spells (quotes, commas, brackets,
        backslashes, non-ASCII) are matched exactly, and no other row is touched."""
        keys = ['q"uote', "a,b", "x]", "[1]", "back\\slash", "é", " spaced ", "NULL"]
        upsert(db, "items", ["item_key"], {(key,): {"count": 0} for key in [*keys, "other"]})
        for_keys(db, "UPDATE items SET count = 1 WHERE item_key {in_keys}", tuple(keys))
        counts = {key: row["count"] for key, row in self.stored(db).items()}
        assert counts == dict.fromkeys(keys, 1) | {"other": 0}

    # --- errors ----------------------------------------------------------------------

    def test_a_bad_statement_is_a_programming_error_with_the_driver_error_as_cause(
        self, db: Database
    ) -> None:
        with pytest.raises(DatabaseProgrammingError) as raised:
            db.execute("SELEKT 1")
        assert raised.value.__cause__ is not None
        assert not isinstance(raised.value.__cause__, ReadModelDatabaseError)
        with pytest.raises(DatabaseProgrammingError):
            db.execute("SELECT no_such_column FROM items")
        assert db.execute("SELECT COUNT(*) AS n FROM items") == [{"n": 0}]

    def test_a_missing_table_says_so(self, db: Database) -> None:
        with pytest.raises(MissingTable):
            db.execute("SELECT * FROM payment_history")

    def test_a_value_out_of_range_is_a_value_error(self, db: Database) -> None:
        with pytest.raises(DatabaseValueError) as raised:
            self.insert(db, EMPTY | {"count": 2**63})
        assert raised.value.__cause__ is not None
        assert self.stored(db) == {}

    def test_an_upserted_value_out_of_range_is_a_value_error(self, db: Database) -> None:
        with pytest.raises(DatabaseValueError):
            upsert(db, "items", ["item_key"], {("a",): {"count": 2**63}, ("b",): {"count": 1}})
        assert self.stored(db) == {}

    def test_a_duplicate_key_is_an_integrity_error(self, db: Database) -> None:
        self.insert(db, EMPTY)
        with pytest.raises(DatabaseIntegrityError):
            self.insert(db, EMPTY)

    def test_an_unreachable_database_is_unavailable(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        db = self.unavailable_database(request, tmp_path)
        try:
            with pytest.raises(DatabaseUnavailable) as raised:
                db.execute("SELECT 1 AS one")
            assert str(raised.value).strip()
        finally:
            db.close()

    def test_a_write_held_elsewhere_is_busy(
        self, db: Database, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        with self.held_elsewhere(db, request, tmp_path) as blocked:
            try:
                with pytest.raises(DatabaseBusy), blocked.transaction():
                    self.insert(blocked, EMPTY)
            finally:
                blocked.close()
