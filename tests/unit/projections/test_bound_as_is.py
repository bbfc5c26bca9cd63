"""The bulk writes skip ``Database.param`` for the value types a backend binds as they are
(``Database.bound_as_is``): that holds only while it does not convert one of them, except
DuckDB's timestamps, which its Arrow insert converts to UTC as param does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Database, _columns_by_group, upsert
from projections.databases.postgres import PostgresDatabase
from projections.databases.sqlite import SqliteDatabase


def backends(tmp_path: Path) -> list[Database]:
    # None of these connects before a statement runs.
    return [
        DuckDatabase(tmp_path / "a.duckdb"),
        SqliteDatabase(tmp_path / "v.sqlite3"),
        PostgresDatabase("postgresql://nobody@127.0.0.1:1/none"),
    ]


SAMPLES = ["text", 7, 2**70, True, False, None, Decimal("1.50"), datetime(2024, 5, 1, 12)]


@pytest.mark.parametrize("value", SAMPLES)
def test_every_backend_binds_these_types_as_they_are(tmp_path: Path, value: Any) -> None:
    for db in backends(tmp_path):
        if type(value) in db.bound_as_is:
            assert db.param(value) is value, type(db).__name__
    aware = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    for db in backends(tmp_path)[2:]:  # PostgreSQL binds aware timestamps itself
        assert db.param(aware) is aware


def test_duckdb_stores_an_aware_timestamp_as_param_makes_it(tmp_path: Path) -> None:
    db = DuckDatabase(tmp_path / "t.duckdb")
    try:
        db.execute("CREATE TABLE t (k VARCHAR PRIMARY KEY, seen_at TIMESTAMP)")
        berlin = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
        rows = {("a",): {"seen_at": berlin}, ("b",): {"seen_at": berlin.astimezone(UTC)}}
        upsert(db, "t", ["k"], rows, {"seen_at"})
        stored = db.execute("SELECT k, seen_at FROM t ORDER BY k")
        assert [row["seen_at"] for row in stored] == [db.param(berlin)] * 2
        assert db.param(berlin) == datetime(2024, 5, 1, 10)
    finally:
        db.close()


def bound(db: Database, value: Any) -> Any:
    return value if type(value) in db.bound_as_is else db.param(value)


def comparable(groups: dict[tuple[str, ...], list[list[Any]]]) -> Any:
    """Columns with PostgreSQL's JSON wrappers (equal only to themselves) unwrapped."""
    return {
        columns: [[getattr(value, "obj", value) for value in column] for column in group]
        for columns, group in groups.items()
    }


def test_columns_are_what_param_makes_of_each_value(tmp_path: Path) -> None:
    rows = {
        ("k1",): {"b": 1, "a": "x", "c": None, "d": Decimal("1.50"), "e": {"j": [1]}},
        ("k2",): {"a": "y", "t": datetime(2024, 5, 1, 12, tzinfo=UTC)},
        ("k3",): {"d": Decimal("2"), "e": None, "c": 5, "b": 2, "a": "z"},
    }
    for db in backends(tmp_path):
        records: dict[tuple[str, ...], list[list[Any]]] = {}
        for key, values in rows.items():
            columns = tuple(sorted(values))
            record = [*key, *(bound(db, values[column]) for column in columns)]
            records.setdefault(columns, []).append(record)
        expected = {
            columns: [list(column) for column in zip(*group, strict=True)]
            for columns, group in records.items()
        }
        assert comparable(_columns_by_group(db, rows)) == comparable(expected), db


def test_rows_written_with_given_columns_are_one_group_with_none_where_they_have_none(
    tmp_path: Path,
) -> None:
    from types import MappingProxyType

    rows = {("k1",): {"b": 1, "a": "x"}, ("k2",): {"c": Decimal("2.5")}, ("k3",): {}}
    for db in backends(tmp_path):
        expected = {
            ("a", "b", "c"): [
                ["k1", "k2", "k3"],
                ["x", None, None],
                [1, None, None],
                [None, db.param(Decimal("2.5")), None],
            ]
        }
        assert _columns_by_group(db, rows, {"c", "b", "a"}) == expected, db
        read_only = {key: MappingProxyType(values) for key, values in rows.items()}
        assert _columns_by_group(db, read_only, {"c", "b", "a"}) == expected, db
        assert _columns_by_group(db, {}, {"a"}) == {}
