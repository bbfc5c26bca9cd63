"""The asynchronous lenders of the read-model port (what the API's history pages read
through): the same rows as the blocking adapters, and the same errors, on the real
PostgreSQL server (asyncio pool) and on the embedded default's SQLite file (threads)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from projections.databases.errors import DatabaseBusy, DatabaseUnavailable, MissingTable
from projections.databases.port import AsyncDatabaseLender, Database
from projections.databases.postgres import PostgresDatabase
from replay.home_postgres import PostgresHome
from replay.home_sqlite import SqliteHome
from replay.targets import ViewsHome
from tests.integration.projections.databases.contract import COLUMNS, EMPTY, FULL, INSERT, ITEMS

SELECT = f"SELECT {', '.join(COLUMNS)} FROM items WHERE item_key >= ? ORDER BY item_key"


@pytest.fixture(params=["postgres", "sqlite"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewsHome]:
    if request.param == "sqlite":
        yield SqliteHome(tmp_path / "views.sqlite3")
        return
    dsn = request.getfixturevalue("pg_dsn")
    schema = request.getfixturevalue("pg_schema")
    PostgresDatabase(dsn, schema=schema).execute("SELECT 1 AS one")  # creates the schema
    yield PostgresHome(make_conninfo(dsn, options=f"-csearch_path={schema}"))


def filled(home: ViewsHome) -> Database:
    db = home.live()
    db.execute(ITEMS)
    db.executemany(INSERT, [[db.param(row[c]) for c in COLUMNS] for row in (FULL, EMPTY)])
    return db


async def rows_through(
    lender: AsyncDatabaseLender, statement: str, *params: object
) -> list[dict[str, object]]:
    await lender.open()
    try:
        async with lender.lend() as db:
            return await db.execute(statement, [db.param(value) for value in params])
    finally:
        await lender.close()


def test_the_async_lender_reads_the_rows_the_blocking_one_does(home: ViewsHome) -> None:
    db = filled(home)
    with_blocking = db.execute(SELECT, [db.param("a")])
    assert len(with_blocking) == 2
    assert asyncio.run(rows_through(home.async_lender(2), SELECT, "a")) == with_blocking


def test_a_missing_table_says_so(home: ViewsHome) -> None:
    home.live().execute("SELECT 1 AS one")  # the database exists, the table does not
    with pytest.raises(MissingTable):
        asyncio.run(rows_through(home.async_lender(2), "SELECT * FROM nowhere"))


def test_an_unreachable_server_is_unavailable(pg_dsn: str) -> None:
    # Port 1 on loopback: nothing listens there, so every connection is refused.
    home = PostgresHome(make_conninfo(pg_dsn, port=1, connect_timeout=1))
    lender = home.async_lender(1)
    lender.wait_s = 1.0  # type: ignore[attr-defined]
    with pytest.raises((DatabaseUnavailable, DatabaseBusy)):
        asyncio.run(rows_through(lender, "SELECT 1 AS one"))


def test_a_pool_with_every_connection_lent_is_busy(pg_dsn: str) -> None:
    from projections.databases.postgres_async import AsyncPostgresPool

    async def second_loan_while_the_first_is_out() -> None:
        pool = AsyncPostgresPool(pg_dsn, size=1, wait_s=0.5)
        await pool.open()
        try:
            async with pool.lend() as first:
                await first.execute("SELECT 1 AS one")
                async with pool.lend():
                    pass
        finally:
            await pool.close()

    with pytest.raises(DatabaseBusy, match="no free connection"):
        asyncio.run(second_loan_while_the_first_is_out())
