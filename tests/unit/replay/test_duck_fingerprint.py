"""DuckDB's fingerprint of a table (replay/home_duckdb.py): equal for the same rows in any
order, in another file; different for a value changed, moved to another column or made
NULL; none for a table with a column type whose hash is not canonical_value's spelling."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from projections.databases.duckdb import DuckDatabase
from replay.home_duckdb import DuckHome

HOME = DuckHome(Path("unused.duckdb"), in_data_dir=False)
COLUMNS = "a VARCHAR, b VARCHAR, n BIGINT, d DECIMAL(18,6), ts TIMESTAMP, f BOOLEAN"
ROWS = [
    ("x", "y", 0, "1.5", "2026-01-02 03:04:05.000006", True),
    ("", None, None, "0", None, False),
    ('ü\n"', "z", -(2**63), "-0.000001", "0001-01-01 00:00:00", None),
]


@contextmanager
def table(rows: list[tuple[Any, ...]], columns: str = COLUMNS) -> Iterator[DuckDatabase]:
    with tempfile.TemporaryDirectory() as directory:
        db = DuckDatabase(Path(directory) / "t.duckdb")
        try:
            db.execute(f"CREATE TABLE t ({columns})")
            if rows:
                marks = ", ".join("?" for _ in rows[0])
                db.executemany(f"INSERT INTO t VALUES ({marks})", rows)
            yield db
        finally:
            db.close()


def fingerprint(rows: list[tuple[Any, ...]], columns: str = COLUMNS) -> str | None:
    with table(rows, columns) as db:
        return HOME.fingerprint(db, "t")


def test_the_same_rows_in_any_order_have_one_fingerprint() -> None:
    assert fingerprint(ROWS) is not None
    assert fingerprint(ROWS) == fingerprint(list(reversed(ROWS)))
    assert fingerprint([]) is not None


def test_a_changed_moved_or_nulled_value_changes_it() -> None:
    first = ROWS[0]
    changed = [("x!", *first[1:]), *ROWS[1:]]
    moved = [("y", "x", *first[2:]), *ROWS[1:]]
    nulled = [(*first[:2], None, *first[3:]), *ROWS[1:]]
    empty = [ROWS[0], (None, *ROWS[1][1:]), ROWS[2]]  # '' made NULL
    twice = [*ROWS, ROWS[0]]
    prints = {fingerprint(rows) for rows in (ROWS, changed, moved, nulled, empty, twice)}
    assert len(prints) == 6


def test_a_column_of_a_type_not_hashed_as_spelled_gives_no_fingerprint() -> None:
    # -0.0 and 0.0 are one DOUBLE to its hash; a month and 30 days one INTERVAL.
    assert fingerprint([(0.0, "x")], "f DOUBLE, a VARCHAR") is None
    assert fingerprint([("1 month",)], "span INTERVAL") is None


def test_a_collated_text_column_gives_no_fingerprint() -> None:
    # Under NOCASE 'Ab' and 'ab' hash alike, though spelled apart; the type reads VARCHAR.
    assert fingerprint([("Ab",)], "a VARCHAR COLLATE NOCASE") is None
    assert fingerprint([("Ab",)], "a VARCHAR") is not None


def test_values_swapped_between_rows_change_it() -> None:
    rows = [(f"s{i}", i * 7919) for i in range(50)]
    swapped = [(rows[0][0], rows[1][1]), (rows[1][0], rows[0][1]), *rows[2:]]
    assert fingerprint(rows, "s VARCHAR, n BIGINT") != fingerprint(swapped, "s VARCHAR, n BIGINT")
