"""Many history pages in one statement (`AsyncDatabase.json_pages` on PostgreSQL, what the
API's page batches ask for): each page is byte for byte, count and last keys, the page its
query gives alone (`json_rows`), whatever the batch holds: customers' and stations' pages,
periods, `after` cursors (ties in time included), limits, empty pages, one shape or many."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from psycopg.conninfo import make_conninfo

from api.schemas import SUMMARY_FORMATS
from projections.databases.port import COLUMNS, JsonPage, JsonQuery
from projections.databases.postgres import PostgresDatabase
from projections.databases.postgres_async import AsyncPostgresPool
from projections.payment_history import HistoryFilter, PaymentHistory, history_query

pytestmark = pytest.mark.postgres

_BASE = datetime(2025, 3, 1, tzinfo=UTC)
# Payments whose times tie (many per minute), some with microseconds, over a few owners.
_PAYMENTS = """
INSERT INTO payment_history (payment_key, payment_id, customer_id, station_id, created_at,
    status, currency, authorised_minor, captured_minor, energy_kwh, session_started_at)
SELECT 'pk-' || g, 'P-' || g, 'C-' || (g %% 7), 'ST-' || (g %% 3),
    %(base)s + (g %% 40) * interval '1 minute'
        + CASE WHEN g %% 5 = 0 THEN (g %% 999) * interval '1 microsecond' ELSE interval '0' END,
    'captured', 'EUR', 100 * g, CASE WHEN g %% 4 = 0 THEN NULL ELSE 100 * g END,
    (g %% 13) / 7.0, CASE WHEN g %% 3 = 0 THEN NULL ELSE %(base)s END
FROM generate_series(1, 400) AS g
"""


def _query(wanted: HistoryFilter) -> JsonQuery:
    return history_query(lambda value: value, wanted, columns=(COLUMNS,)).as_json(SUMMARY_FORMATS)


def _wanted(rng: random.Random, cursors: list[str]) -> HistoryFilter:
    owner = rng.choice(["customer", "station"])
    minutes = sorted(rng.sample(range(-5, 45), 2))
    period = rng.random() < 0.3
    return HistoryFilter(
        customer_id=f"C-{rng.randrange(8)}" if owner == "customer" else None,  # C-7: nobody
        station_id=f"ST-{rng.randrange(4)}" if owner == "station" else None,
        period_from=_BASE + timedelta(minutes=minutes[0]) if period else None,
        period_to=_BASE + timedelta(minutes=minutes[1]) if period and rng.random() < 0.5 else None,
        limit=rng.choice([1, 3, 20, 500]),
        after=rng.choice(cursors) if cursors and rng.random() < 0.4 else None,
    )


async def _compare(dsn: str) -> int:
    """Batches of random pages against each page alone; how many batches had several."""
    pool = AsyncPostgresPool(dsn, size=1)
    await pool.open()
    rng = random.Random(11)
    cursors: list[str] = []
    batched = 0
    try:
        async with pool.lend() as db:
            for _ in range(60):
                wanted = [_wanted(rng, cursors) for _ in range(rng.randrange(2, 33))]
                queries = [_query(each) for each in wanted]
                pages = await db.json_pages(queries)
                alone = [JsonPage.of(await db.json_rows(query)) for query in queries]
                assert pages == alone
                for each, page in zip(wanted, pages, strict=True):
                    query = history_query(lambda value: value, each)
                    cursor = query.next_cursor(page.count, page.last)
                    if cursor is not None:
                        cursors.append(cursor)
                batched += 1
            # One query alone, and none at all.
            assert await db.json_pages([]) == []
            only = _query(HistoryFilter(customer_id="C-1", limit=5))
            assert await db.json_pages([only]) == [JsonPage.of(await db.json_rows(only))]
    finally:
        await pool.close()
    assert len(cursors) > 20  # `after` was exercised
    return batched


@pytest.fixture
def dsn(pg_dsn: str, pg_schema: str) -> str:
    """The schema's DSN, its payment history filled."""
    db = PostgresDatabase(pg_dsn, schema=pg_schema)
    try:
        PaymentHistory(db).create()
        db.execute(_PAYMENTS.replace("%(base)s", "?"), [_BASE] * 2)
    finally:
        db.close()
    return make_conninfo(pg_dsn, options=f"-csearch_path={pg_schema}")


def test_a_batch_s_pages_are_each_page_alone(dsn: str) -> None:
    assert asyncio.run(_compare(dsn)) == 60


def test_pages_with_nothing_in_common_batch_too(dsn: str) -> None:
    """Empty pages beside full ones; the same page twice in one batch."""

    async def run() -> None:
        pool = AsyncPostgresPool(dsn, size=1)
        await pool.open()
        try:
            async with pool.lend() as db:
                queries = [
                    _query(HistoryFilter(customer_id="nobody")),
                    _query(HistoryFilter(customer_id="C-2", limit=500)),
                    _query(HistoryFilter(customer_id="C-2", limit=500)),
                    _query(HistoryFilter(station_id="ST-0", period_from=_BASE, limit=2)),
                ]
                pages = await db.json_pages(queries)
        finally:
            await pool.close()
        assert pages[0] == JsonPage(b"", 0, None)
        assert pages[1] == pages[2] and pages[1].count == len(range(2, 401, 7))
        assert pages[3].count == 2 and pages[3].last is not None

    asyncio.run(run())


def test_an_offset_of_seconds_keeps_its_instant(dsn: str) -> None:
    """A period's bound with an offset of seconds (+00:00:30) is the same instant in the batch:
    orjson would write the offset rounded to the minute, 30 seconds off."""
    instant = _BASE + timedelta(minutes=10, seconds=15)  # the minute-10 payments are before it
    odd = instant.astimezone(timezone(timedelta(seconds=30)))

    async def run() -> tuple[JsonPage, JsonPage]:
        pool = AsyncPostgresPool(dsn, size=1)
        await pool.open()
        try:
            async with pool.lend() as db:
                pages = await db.json_pages(
                    [
                        _query(HistoryFilter(station_id="ST-1", period_from=odd, limit=500)),
                        _query(HistoryFilter(station_id="ST-1", period_from=instant, limit=500)),
                    ]
                )
        finally:
            await pool.close()
        return pages[0], pages[1]

    odd_page, utc_page = asyncio.run(run())
    assert odd_page == utc_page
    assert utc_page.count == sum(1 for g in range(1, 401) if g % 3 == 1 and g % 40 > 10)
