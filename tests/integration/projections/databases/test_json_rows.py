"""Rows as JSON (`AsyncDatabase.json_rows`, what the API's history pages pass along):
PostgreSQL's own rendering is byte for byte what pydantic's serialiser writes for the rows
the driver loads in a UTC session (the API's), whatever the values (times with and without
microseconds, in UTC whatever the zone the DSN asks for, exact decimals, nulls, any text),
in the query's order (by the values, not by their text), each with its keys as the driver
loads them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo
from pydantic_core import to_json

from projections.databases.port import COLUMNS, JsonFormat, JsonQuery
from projections.databases.postgres import PostgresDatabase
from projections.databases.postgres_async import AsyncPostgresPool

pytestmark = pytest.mark.postgres

FORMATS = {
    "item": JsonFormat.PLAIN,
    "label": JsonFormat.PLAIN,
    "amount_minor": JsonFormat.PLAIN,
    "created_at": JsonFormat.TIME,
    "energy_kwh": JsonFormat.DECIMAL,
}
TABLE = """CREATE TABLE json_items (
    item {int} PRIMARY KEY,
    label {text},
    amount_minor {bigint},
    created_at {ts},
    energy_kwh {kwh}
)"""
# Ordered by a time: the order of the times, not of their text (`Z` sorts after `.5Z`).
ORDER = "created_at DESC NULLS LAST, item DESC"
QUERY = f"SELECT {COLUMNS} FROM json_items WHERE item >= ? ORDER BY {ORDER}"
KEYS = ("created_at", "item")

# Times as read models hold them (also the summary texts' tests' times).
TIMES = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    # Whole seconds, as most stored times are.
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.replace(microsecond=0)),
)
_ROW = st.tuples(
    st.one_of(
        st.none(),
        st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    ),
    st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    TIMES,
    st.one_of(
        st.none(),
        st.decimals(min_value=0, max_value=10**11 - 1, places=3, allow_nan=False),
    ),
)


@pytest.fixture(params=["UTC", "Etc/UTC", "Asia/Kolkata", "America/St_Johns"])
def dsn(request: pytest.FixtureRequest, pg_dsn: str, pg_schema: str) -> Iterator[str]:
    """The schema's DSN with the session in one time zone (the server's setting)."""
    db = PostgresDatabase(pg_dsn, schema=pg_schema)
    db.execute(TABLE)
    db.close()
    options = f"-csearch_path={pg_schema} -cTimeZone={request.param}"
    yield make_conninfo(pg_dsn, options=options)


Rendered = list[tuple[bytes, tuple[Any, ...]]]


async def _both(dsn: str, rows: list[tuple[Any, ...]]) -> tuple[Rendered, Rendered]:
    """PostgreSQL's JSON of ``rows`` and pydantic's JSON of the rows the driver loads,
    each with its keys."""
    db = PostgresDatabase(dsn)
    try:
        db.execute("DELETE FROM json_items")
        if rows:
            db.executemany(
                "INSERT INTO json_items VALUES (?, ?, ?, ?, ?)",
                [[index, *row] for index, row in enumerate(rows)],
            )
        loaded = db.execute(QUERY.replace(COLUMNS, ", ".join(FORMATS)), [1])
    finally:
        db.close()
    pool = AsyncPostgresPool(dsn, size=1)
    await pool.open()
    try:
        async with pool.lend() as lent:
            rendered = await lent.json_rows(JsonQuery(QUERY, [1], FORMATS, ORDER, KEYS))
    finally:
        await pool.close()
    in_utc = [{name: _utc(value) for name, value in row.items()} for row in loaded]
    return rendered, [(to_json(row), tuple(row[key] for key in KEYS)) for row in in_utc]


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_ROW, max_size=12))
def test_postgres_writes_what_pydantic_writes(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    rendered, expected = asyncio.run(_both(dsn, rows))
    assert rendered == expected
    assert len(rendered) == max(0, len(rows) - 1)


def test_the_values_that_matter_most(dsn: str) -> None:
    moment = datetime(2024, 5, 1, 10, 0, 0, 400000, tzinfo=UTC)
    rows = [
        (None, None, None, None),
        ('a"\\/\x01é', 988, moment, Decimal("20.000")),
        ("same second, earlier", 1, moment.replace(microsecond=0), Decimal("0.001")),
    ]
    rendered, expected = asyncio.run(_both(dsn, rows))
    assert rendered == expected
    assert b'"energy_kwh":"20.000"' in rendered[0][0]
    assert b'"label":"a\\"\\\\/\\u0001\xc3\xa9"' in rendered[0][0]
    assert b'"label":"same second, earlier"' in rendered[1][0]
    assert rendered[0][1] == (moment, 1)
