"""A DuckDB table's checksum taken from Arrow record batches equals the one taken from the
rows DuckDB returns as Python values (``checksum_chunks``, the definition): every value
of every column type the read models use, NULLs, text that JSON escapes, timestamps of
any year, and a type Arrow does not spell (read as chunks)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.databases.duckdb import DuckDatabase
from replay.checksum import checksum_chunks, table_checksum
from replay.checksum_arrow import checksum_batches

NO_DEADLINE = settings(deadline=None, max_examples=60)

COLUMNS = {
    "t": ("VARCHAR", st.text(max_size=6)),
    "ascii": ("VARCHAR", st.text(st.characters(max_codepoint=127), max_size=6)),
    "b": ("BIGINT", st.integers(-(2**63), 2**63 - 1)),
    "i": ("INTEGER", st.integers(-(2**31), 2**31 - 1)),
    "f": ("BOOLEAN", st.booleans()),
    "d": ("DECIMAL(18,6)", st.decimals(-(10**11), 10**11, places=6)),
    "k": ("DECIMAL(14,3)", st.decimals(-(10**10), 10**10, places=3)),
    "s": ("DECIMAL(9,0)", st.decimals(-(10**8), 10**8, places=0)),
    "at": ("TIMESTAMP", st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31))),
    "recorded_at": ("TIMESTAMP", st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1))),
}


@contextmanager
def table_of(rows: list[tuple[Any, ...]], columns: dict[str, str]) -> Iterator[DuckDatabase]:
    with tempfile.TemporaryDirectory() as directory:
        db = DuckDatabase(Path(directory) / "t.duckdb")
        try:
            body = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
            db.execute(f"CREATE TABLE t ({body})")
            if rows:
                marks = ", ".join("?" for _ in columns)
                db.executemany(f"INSERT INTO t VALUES ({marks})", rows)
            yield db
        finally:
            db.close()


def by_chunks(db: DuckDatabase) -> Any:
    return checksum_chunks("t", db.stream_chunks("SELECT * FROM t"))


rows = st.lists(st.tuples(*(values | st.none() for _, values in COLUMNS.values())), max_size=25)


@NO_DEADLINE
@given(rows, st.integers(1, 7))
def test_arrow_batches_give_the_rows_checksum(table: list[tuple[Any, ...]], size: int) -> None:
    columns = {name: kind for name, (kind, _) in COLUMNS.items()}
    with table_of(table, columns) as db:
        expected = by_chunks(db)
        batches = db.stream_batches("SELECT * FROM t", size)
        assert batches is not None
        assert checksum_batches("t", batches) == expected
        assert table_checksum(db, "t") == expected


def test_a_type_arrow_does_not_spell_is_read_as_chunks() -> None:
    rows = [("x", "1 day"), (None, None)]
    with table_of(rows, {"t": "VARCHAR", "span": "INTERVAL"}) as db:
        batches = db.stream_batches("SELECT * FROM t")
        assert batches is not None
        assert checksum_batches("t", batches) is None
        batches.close()
        assert table_checksum(db, "t") == by_chunks(db)
        assert table_checksum(db, "t").rows == 2


def test_decimals_arrow_would_spell_otherwise_are_read_as_chunks() -> None:
    # Arrow spells a scale over 6 in exponent form (1E-10), and canonical_value's Decimal
    # works to 28 digits (a HUGEINT comes to Arrow as a DECIMAL(38,0) too): such columns
    # are spelled row by row, as the definition says.
    rows = [
        (Decimal("0.0000000001"), Decimal(10**37 + 1), -(10**30)),
        (Decimal("0.00000001"), None, 10**30 + 7),
    ]
    columns = {"small": "DECIMAL(18,10)", "wide": "DECIMAL(38,0)", "h": "HUGEINT"}
    with table_of(rows, columns) as db:
        batches = db.stream_batches("SELECT * FROM t")
        assert batches is not None
        assert checksum_batches("t", batches) is None
        batches.close()
        assert table_checksum(db, "t") == by_chunks(db)
