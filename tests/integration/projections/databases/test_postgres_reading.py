"""The API pool's psycopg connection (`postgres_reading.ReadingConnection`) on the real
PostgreSQL server: a result of many pieces read with the socket registered once (psycopg's
own connection registers it per piece), the same rows as psycopg's own, statements that
must wait to write, errors, a cancelled wait (cancelled on the server, as psycopg's), a
connection closed during a wait, and backends terminated under load on asyncio's loop and
uvloop's."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import psycopg
import pytest
import uvloop
from psycopg_pool import AsyncConnectionPool

from projections.databases.postgres_reading import ReadingConnection

T = TypeVar("T")

# About 2 MB of rows: PostgreSQL sends it in 8 kB pieces.
MANY_PIECES = "SELECT n, repeat('x', 1000) AS filler FROM generate_series(1, 2000) AS n"


class CountingSelector(selectors.EpollSelector):
    """epoll, counting the sockets it registers (each one an epoll_ctl call)."""

    registered = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self.registered += 1
        return super().register(fileobj, events, data)


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the sockets registered with epoll."""

    def __init__(self) -> None:
        self.counting = CountingSelector()
        super().__init__(self.counting)

    @property
    def readers(self) -> int:
        return self.counting.registered


def counted(
    connection_class: type[psycopg.AsyncConnection[Any]], dsn: str, statement: str
) -> tuple[list[tuple[Any, ...]], int]:
    """``statement``'s rows, and how many times reading them registered the socket for
    reading (connecting and closing, which vary with timing, not counted)."""

    async def rows() -> tuple[list[tuple[Any, ...]], int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, CountingLoop)
        async with await connection_class.connect(dsn, autocommit=True) as connection:
            before = loop.readers
            cursor = await connection.execute(statement)
            found = await cursor.fetchall()
            return found, loop.readers - before

    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        return runner.run(rows())


def test_a_result_of_many_pieces_is_read_with_the_socket_registered_once(pg_dsn: str) -> None:
    mine, mine_readers = counted(ReadingConnection, pg_dsn, MANY_PIECES)
    theirs, their_readers = counted(psycopg.AsyncConnection, pg_dsn, MANY_PIECES)
    assert mine == theirs
    assert len(mine) == 2000
    assert mine_readers == 1
    assert their_readers > 1  # psycopg's own wait: once per piece it found waiting


def test_a_statement_larger_than_the_socket_buffer_waits_to_write_and_answers(
    pg_dsn: str,
) -> None:
    large = "y" * 20_000_000

    async def length() -> int:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            cursor = await connection.execute("SELECT length(%s::text)", [large])
            found = await cursor.fetchone()
            assert found is not None
            return int(found[0])

    assert asyncio.run(length()) == len(large)


def test_an_error_is_raised_and_the_connection_answers_after_it(pg_dsn: str) -> None:
    async def error_then_answer() -> list[tuple[Any, ...]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            with pytest.raises(psycopg.errors.UndefinedColumn):
                await connection.execute("SELECT no_such_column FROM (SELECT 1 AS n) AS t")
            cursor = await connection.execute(MANY_PIECES)
            return await cursor.fetchall()

    assert len(asyncio.run(error_then_answer())) == 2000


LOOPS = pytest.mark.parametrize("loop", ["uvloop", "asyncio"])


def run(loop: str, work: Coroutine[Any, Any, T]) -> T:
    """``work`` run to its end on a new event loop of the kind named (the API's is uvloop's)."""
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(work)


@LOOPS
def test_a_cancelled_wait_cancels_the_statement_and_leaves_the_connection_usable(
    pg_dsn: str, loop: str
) -> None:
    async def cancelled() -> tuple[bool, Any, Any, list[tuple[Any, ...]]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            waiting = asyncio.ensure_future(connection.execute("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            still_registered = asyncio.get_running_loop().remove_reader(connection.fileno())
            status = connection.info.transaction_status
            async with await psycopg.AsyncConnection.connect(pg_dsn) as other:
                cursor = await other.execute(
                    "SELECT state FROM pg_stat_activity WHERE pid = %s",
                    [connection.info.backend_pid],
                )
                server = await cursor.fetchone()
            cursor = await connection.execute(MANY_PIECES)
            return still_registered, status, server, await cursor.fetchall()

    still_registered, status, server, rows = run(loop, asyncio.wait_for(cancelled(), 10))
    assert not still_registered
    assert status == psycopg.pq.TransactionStatus.IDLE  # as psycopg's own wait leaves it
    assert server == ("idle",)  # the statement was cancelled on the server
    assert len(rows) == 2000


@LOOPS
def test_a_connection_cancelled_in_a_pool_goes_back_to_it_without_warnings(
    pg_dsn: str, caplog: pytest.LogCaptureFixture, loop: str
) -> None:
    async def twice() -> tuple[int, int]:
        async with AsyncConnectionPool(
            pg_dsn,
            min_size=1,
            max_size=1,
            connection_class=ReadingConnection,
            kwargs={"autocommit": True},
            open=False,
        ) as pool:
            await pool.open(wait=True)
            pids = []

            async def sleep_in_pool() -> None:
                async with pool.connection() as connection:
                    pids.append(connection.info.backend_pid)
                    await connection.execute("SELECT pg_sleep(30)")

            waiting = asyncio.ensure_future(sleep_in_pool())
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            async with pool.connection() as connection:
                await connection.execute("SELECT 1")
                pids.append(connection.info.backend_pid)
            return pids[0], pids[1]

    with caplog.at_level(logging.WARNING):
        before, after = run(loop, asyncio.wait_for(twice(), 20))
    assert after == before  # the same connection, not a new one in its place
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@LOOPS
def test_closing_the_connection_during_a_wait_raises_soon(pg_dsn: str, loop: str) -> None:
    async def closed_meanwhile() -> float:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            waiting = asyncio.ensure_future(connection.execute("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.3)
            connection.pgconn.finish()  # another task closing it: no lock, just the socket
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                await waiting
            return time.monotonic() - started

    assert run(loop, asyncio.wait_for(closed_meanwhile(), 10)) < 5


@LOOPS
def test_waits_leave_no_reference_cycles_to_the_collector(pg_dsn: str, loop: str) -> None:
    """Each wait's objects are freed when it ends, not left for the cyclic collector, whose
    collections pause every request in flight: 200 statements leave fewer than 200
    unreachable objects (a cycle per wait left a dozen each)."""

    async def unreachable_after(statements: int) -> int:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            await connection.execute("SELECT 1")
            gc.collect()
            gc.disable()
            try:
                for n in range(statements):
                    await (await connection.execute("SELECT %s::int", [n])).fetchall()
                return gc.collect()
            finally:
                gc.enable()

    assert run(loop, unreachable_after(200)) < 200


# Many clients reading pages through a small pool while their backends are terminated:
# the connections' sockets get errors (uvloop then closes its watch on them).
PAGE = "SELECT n, repeat('x', 1000) FROM generate_series(1, 40) AS n"


async def stuck_after_terminations(dsn: str, cls: type[psycopg.AsyncConnection[Any]]) -> int:
    app = f"reading-{os.getpid()}-{cls.__name__}"
    pool = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=4,
        connection_class=cls,
        open=False,
        kwargs={"autocommit": True, "application_name": app},
    )
    await pool.open(wait=True)
    until = time.monotonic() + 6

    async def client() -> None:
        while time.monotonic() < until:
            try:
                async with pool.connection(timeout=2) as c:
                    await (await c.execute(PAGE)).fetchall()
            except psycopg.Error:
                await asyncio.sleep(0.01)

    clients = [asyncio.ensure_future(client()) for _ in range(20)]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        for _ in range(5):
            await asyncio.sleep(1)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [app],
            )
    _, waiting = await asyncio.wait(clients, timeout=5)
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    await pool.close(timeout=2)
    return len(waiting)


@LOOPS
@pytest.mark.parametrize("cls", [psycopg.AsyncConnection, ReadingConnection])
def test_no_statement_waits_forever_after_backends_are_terminated(
    pg_dsn: str, cls: type[psycopg.AsyncConnection[Any]], loop: str
) -> None:
    assert run(loop, stuck_after_terminations(pg_dsn, cls)) == 0
