"""A PostgreSQL table's checksum with PostgreSQL spelling its rows equals the one taken from
the rows psycopg returns as Python values (``checksum_chunks``, the definition): every
column type the read models use, NULLs, text that JSON escapes (control characters, DEL,
non-ASCII), JSON with nested and unsorted keys, floats and integers past 64 bits, decimals
of every scale and NaN, timestamps of any year; and a type it does not spell (read as
chunks)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from projections.databases.postgres import PostgresDatabase, drop_schema
from replay.checksum import canonical_value, checksum_chunks, table_checksum
from replay.checksum_postgres import checksum_spelled, json_spelled

PROPERTY = settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# PostgreSQL's text holds any character but NUL (and UTF-8 no lone surrogate).
characters = st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])
texts = st.text(characters, max_size=6)
keys = st.text(characters, max_size=4)
documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(["plain", "1.5", 'q"b\\s', "caf\u00e9", "\x7f", "\n\t"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
aware = st.datetimes(
    datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.sampled_from([UTC, None])
).map(lambda at: at if at.tzinfo else at.replace(tzinfo=UTC))

COLUMNS = {
    "t": ("TEXT", texts),
    "ascii": ("TEXT", st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=6)),
    "v": ("VARCHAR(20)", texts),
    "b": ("BIGINT", st.integers(-(2**63), 2**63 - 1)),
    "i": ("INTEGER", st.integers(-(2**31), 2**31 - 1)),
    "h": ("SMALLINT", st.integers(-(2**15), 2**15 - 1)),
    "f": ("BOOLEAN", st.booleans()),
    "kwh": ("NUMERIC(14,3)", st.decimals(-(10**10), 10**10, places=3) | st.just(Decimal("NaN"))),
    "d": ("NUMERIC(20,6)", st.decimals(-(10**13), 10**13, places=6)),
    "s": ("NUMERIC(9,0)", st.decimals(-(10**8), 10**8, places=0)),
    "at": ("TIMESTAMPTZ", aware),
    "local": ("TIMESTAMP", st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31))),
    "doc": ("JSONB", documents.map(Jsonb)),
    "Mixed Case": ("JSONB", st.dictionaries(keys, documents, max_size=4).map(Jsonb)),
}


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[PostgresDatabase]:
    schema = f"test_checksum_{uuid.uuid4().hex[:10]}"
    db = PostgresDatabase(pg_dsn, schema=schema)
    yield db
    db.close()
    drop_schema(pg_dsn, schema)


def fill(db: PostgresDatabase, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
    db.execute("DROP TABLE IF EXISTS t")
    body = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
    db.execute(f"CREATE TABLE t ({body})")
    if rows:
        names = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO t ({names}) VALUES ({marks})", rows)


def by_chunks(db: PostgresDatabase) -> Any:
    return checksum_chunks("t", db.stream_chunks("SELECT * FROM t"))


rows = st.lists(st.tuples(*(values | st.none() for _, values in COLUMNS.values())), max_size=12)


@PROPERTY
@given(table=rows)
def test_postgres_spelling_gives_the_rows_checksum(
    pg: PostgresDatabase, table: list[tuple[Any, ...]]
) -> None:
    fill(pg, {name: kind for name, (kind, _) in COLUMNS.items()}, table)
    expected = by_chunks(pg)
    assert checksum_spelled(pg, "t") == expected
    assert table_checksum(pg, "t") == expected


def test_rows_of_plain_values_are_spelled_by_postgres_and_the_others_read_again(
    pg: PostgresDatabase,
) -> None:
    plain = ("x", 1, Decimal("20.000"), datetime(2026, 1, 2, 3, 4, 5, 6, UTC), Jsonb([{"b": 1}]))
    rows = [
        plain,
        ("caf\u00e9", 2, Decimal("1.500"), datetime(5, 1, 1, tzinfo=UTC), Jsonb({"z": 1.5})),
        ("\x7f", None, Decimal("NaN"), None, None),
        ('"\\\n', 3, Decimal("0.000"), datetime(9999, 12, 31, 23, 59, tzinfo=UTC), Jsonb(2**70)),
    ]
    columns = {"t": "TEXT", "n": "BIGINT", "k": "NUMERIC(14,3)", "at": "TIMESTAMPTZ"}
    fill(pg, {**columns, "doc": "JSONB"}, rows)
    spelled = checksum_spelled(pg, "t")
    assert spelled == by_chunks(pg)
    assert spelled is not None and spelled.rows == 4
    # A changed value changes it.
    pg.execute("UPDATE t SET at = at + interval '1 microsecond' WHERE n = 1")
    assert checksum_spelled(pg, "t") != spelled
    assert checksum_spelled(pg, "t") == by_chunks(pg)


def test_a_type_it_does_not_spell_is_read_as_chunks(pg: PostgresDatabase) -> None:
    # An interval, and a numeric of any precision (canonical_value's Decimal works to 28
    # digits).
    fill(pg, {"t": "TEXT", "span": "INTERVAL"}, [("x", timedelta(days=1)), (None, None)])
    assert checksum_spelled(pg, "t") is None
    assert table_checksum(pg, "t") == by_chunks(pg)
    fill(pg, {"n": "NUMERIC"}, [(Decimal(10**40 + 1),), (Decimal("1.50"),)])
    assert checksum_spelled(pg, "t") is None
    assert table_checksum(pg, "t") == by_chunks(pg)


@given(documents)
def test_a_document_is_written_as_json_writes_what_json_reads_of_it(value: Any) -> None:
    # jsonb's text: ", " and ": " between items (its numbers are numeric's text; a float
    # here is Python's, with its fraction or exponent).
    text = json.dumps(value, ensure_ascii=False).encode()
    assert json_spelled(text) == canonical_value(json.loads(text)).encode()


def test_a_document_nested_past_orjson_s_limits_is_written_by_json() -> None:
    text = ("[" * 300 + "]" * 300).encode()  # orjson writes at most 254 levels
    assert json_spelled(text) == canonical_value(json.loads(text)).encode()
