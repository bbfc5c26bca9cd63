"""PostgreSQL's fingerprint of a table (replay/home_postgres.py) stands for its checksum:
tables with equal fingerprints have equal checksums (every column type the read models
use, NULLs, escaped and non-ASCII text, JSON, decimals of every scale and NaN, timestamps
of any year), so the same rows in any order have one; a changed, moved or nulled value, or
JSON numbers spelled apart (1 and 1.0), change it; a type hashed otherwise than spelled, or
a nondeterministic collation, gives none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from projections.databases.postgres import PostgresDatabase, drop_schema
from replay.checksum import table_checksum
from replay.home_postgres import PostgresHome
from tests.integration.replay.test_checksum_postgres import COLUMNS, PROPERTY, fill


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[tuple[PostgresDatabase, PostgresHome]]:
    schema = f"test_fingerprint_{uuid.uuid4().hex[:10]}"
    db = PostgresDatabase(pg_dsn, schema=schema)
    yield db, PostgresHome(pg_dsn)
    db.close()
    drop_schema(pg_dsn, schema)


def kinds() -> dict[str, str]:
    return {name: kind for name, (kind, _) in COLUMNS.items()}


values = [values | st.none() for _, values in COLUMNS.values()]
rows = st.lists(st.tuples(*values), min_size=1, max_size=8)


def fingerprint_and_checksum(
    pg: tuple[PostgresDatabase, PostgresHome], columns: dict[str, str], table: list[Any]
) -> tuple[str | None, Any]:
    db, home = pg
    fill(db, columns, table)
    return home.fingerprint(db, "t"), table_checksum(db, "t")


@PROPERTY
@given(table=rows, other=st.data())
def test_equal_fingerprints_have_equal_checksums(
    pg: tuple[PostgresDatabase, PostgresHome], table: list[tuple[Any, ...]], other: Any
) -> None:
    # The same rows shuffled; then one value replaced by another of its column's.
    shuffled = other.draw(st.permutations(table))
    row = other.draw(st.integers(0, len(table) - 1))
    column = other.draw(st.integers(0, len(values) - 1))
    changed = list(shuffled)
    replaced = list(changed[row])
    replaced[column] = other.draw(values[column])
    changed[row] = tuple(replaced)
    first = fingerprint_and_checksum(pg, kinds(), table)
    assert first[0] is not None
    assert fingerprint_and_checksum(pg, kinds(), shuffled) == first
    second = fingerprint_and_checksum(pg, kinds(), changed)
    if second[0] == first[0]:
        assert second[1] == first[1]


def test_changed_moved_nulled_or_respelled_values_change_it(
    pg: tuple[PostgresDatabase, PostgresHome],
) -> None:
    columns = {"a": "TEXT", "b": "TEXT", "n": "NUMERIC", "doc": "JSONB"}
    base = [("x", "y", Decimal("20"), Jsonb({"q": 1}))]
    variants: list[list[tuple[Any, ...]]] = [
        base,
        [("x!", "y", Decimal("20"), Jsonb({"q": 1}))],
        [("y", "x", Decimal("20"), Jsonb({"q": 1}))],
        [("x", None, Decimal("20"), Jsonb({"q": 1}))],
        [("x", "y", Decimal("20"), Jsonb({"q": 1.0}))],  # 1.0: a float to json
        [*base, *base],
    ]
    prints = [fingerprint_and_checksum(pg, columns, rows) for rows in variants]
    assert len({fingerprint for fingerprint, _ in prints}) == len(variants)
    # 20.000 is 20 to PostgreSQL's hash and to canonical_value alike.
    same = fingerprint_and_checksum(pg, columns, [("x", "y", Decimal("20.000"), Jsonb({"q": 1}))])
    assert same == prints[0]


def test_values_swapped_between_rows_change_it(
    pg: tuple[PostgresDatabase, PostgresHome],
) -> None:
    # A sum of hash_record_extended alone sums each column's hashes: swapped amounts kept
    # it about half the time (each row's hash is hashed again before the sum).
    columns = {"s": "TEXT", "n": "BIGINT"}
    rows = [(f"s{i}", 1000 + i * 7919) for i in range(50)]
    first = fingerprint_and_checksum(pg, columns, rows)
    for i in range(0, 40, 2):
        swapped = list(rows)
        swapped[i], swapped[i + 1] = (rows[i][0], rows[i + 1][1]), (rows[i + 1][0], rows[i][1])
        assert fingerprint_and_checksum(pg, columns, swapped)[0] != first[0], i


def test_a_type_hashed_otherwise_than_spelled_gives_none(
    pg: tuple[PostgresDatabase, PostgresHome],
) -> None:
    db, home = pg
    # Texts equal in this collation may differ in their bytes, and in their checksum.
    db.execute(
        "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2',"
        " deterministic = false)"
    )
    for column in ("f DOUBLE PRECISION", "span INTERVAL", "t TEXT COLLATE nocase"):
        db.execute("DROP TABLE IF EXISTS t")
        db.execute(f"CREATE TABLE t (id BIGINT, {column})")
        assert home.fingerprint(db, "t") is None
    db.execute("DROP TABLE t")
    with db.transaction():  # a failing fingerprint leaves the transaction usable
        assert home.fingerprint(db, "t") is None
        assert db.execute("SELECT 1 AS one") == [{"one": 1}]
