"""The queue of history pages waiting for a batch (api/page_batches.py), driven in-process
over real PostgreSQL: a page abandoned while it waits is never asked for, a queue past its
cap answers 503 at once, and a lender that fails with an error that is no outage answers
the waiting pages 503 (logged once) without runners spinning."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from api.page_batches import MOST_WAITING, PageBatches
from api.problems import Problem
from api.schemas import SUMMARY_FORMATS
from api.views import ViewsDatabase
from bench.fill import fill_postgres
from projections.databases.port import (
    COLUMNS,
    AsyncDatabase,
    AsyncDatabaseLender,
    JsonQuery,
)
from projections.databases.postgres import PostgresPool, drop_schema
from projections.databases.postgres_async import AsyncPostgresPool
from projections.payment_history import HistoryFilter, history_query

pytestmark = pytest.mark.postgres


@pytest.fixture
def dsn(pg_dsn: str) -> Iterator[str]:
    schema = f"test_queue_{uuid.uuid4().hex[:10]}"
    fill_postgres(pg_dsn, schema, rows=200, customers=5, stations=2)
    try:
        yield make_conninfo(pg_dsn, options=f"-csearch_path={schema}")
    finally:
        drop_schema(pg_dsn, schema)


def _build(customer: str) -> Any:
    def build(param: Any) -> JsonQuery:
        wanted = HistoryFilter(customer, None, None, None, 5, None)
        return history_query(param, wanted, columns=(COLUMNS,)).as_json(SUMMARY_FORMATS)

    return build


@asynccontextmanager
async def _batches(dsn: str, runners: int, counted: list[float]) -> AsyncIterator[PageBatches]:
    views = ViewsDatabase(PostgresPool(dsn, 1), AsyncPostgresPool(dsn, runners), "postgres")
    await views.open()
    try:
        yield PageBatches(views, runners, counted.append)
    finally:
        await views.close()


def _locked(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    connection = psycopg.connect(dsn)
    connection.execute("LOCK TABLE payment_history IN ACCESS EXCLUSIVE MODE")
    return connection


def test_an_abandoned_page_is_never_asked_for(dsn: str) -> None:
    counted: list[float] = []

    async def run() -> None:
        async with _batches(dsn, 1, counted) as batches:
            lock = _locked(dsn)
            first = asyncio.create_task(batches.page(_build("C-1"), 5, "c"))
            await asyncio.sleep(0.5)  # its runner's statement waits for the lock
            gone = [asyncio.create_task(batches.page(_build("C-2"), 5, "c")) for _ in range(5)]
            await asyncio.sleep(0.1)
            for each in gone:
                each.cancel()
            await asyncio.sleep(0.1)
            lock.close()
            assert (await first).count == 5
            await asyncio.sleep(0.2)

    asyncio.run(run())
    assert counted == [1]  # the first page's statement only


def test_a_queue_past_its_cap_answers_503_at_once(dsn: str) -> None:
    async def run() -> list[object]:
        async with _batches(dsn, 1, []) as batches:
            lock = _locked(dsn)
            try:
                pages = [
                    asyncio.create_task(batches.page(_build("C-1"), 5, "c"))
                    for _ in range(MOST_WAITING + 10)
                ]
                await asyncio.sleep(0.5)
                early = [page for page in pages if page.done()]
            finally:
                lock.close()
            answers = await asyncio.gather(*pages, return_exceptions=True)
            assert len(early) == 10
            return answers

    answers = asyncio.run(run())
    refused = [answer for answer in answers if isinstance(answer, Problem)]
    assert [problem.status for problem in refused] == [503] * 10
    assert sum(1 for answer in answers if not isinstance(answer, BaseException)) == MOST_WAITING


class _Broken(AsyncDatabaseLender):
    """A lender whose loans fail with an error that is no database outage."""

    def __init__(self) -> None:
        self.loans = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AsyncDatabase]:
        self.loans += 1
        raise RuntimeError("a loan gone wrong")
        yield  # pragma: no cover  (a generator, for asynccontextmanager)


def test_a_lender_that_raises_answers_503_once_logged(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    lender = _Broken()

    async def run() -> list[object]:
        views = ViewsDatabase(PostgresPool(dsn, 1), lender, "broken")
        await views.open()
        try:
            batches = PageBatches(views, 4, [].append)
            pages = [batches.page(_build(f"C-{number}"), 5, "c") for number in range(20)]
            answers = await asyncio.wait_for(asyncio.gather(*pages, return_exceptions=True), 2)
            await asyncio.sleep(0.2)  # no runner goes on asking for loans
            return answers
        finally:
            await views.close()

    with caplog.at_level(logging.ERROR, logger="api.page_batches"):
        answers = asyncio.run(run())
    assert all(isinstance(answer, Problem) and answer.status == 503 for answer in answers)
    assert not any("a loan gone wrong" in str(answer) for answer in answers)
    assert 1 <= lender.loans <= 20
    logged = [r for r in caplog.records if "lending a connection failed" in r.message]
    assert len(logged) == 1
    assert logged[0].getMessage().endswith(": RuntimeError")  # its type
    assert "a loan gone wrong" not in caplog.text  # not its text, which may hold anything
    assert not logged[0].exc_info
