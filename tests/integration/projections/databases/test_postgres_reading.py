"""The API pool's psycopg connection (`postgres_reading.ReadingConnection`) on the real
PostgreSQL server: a result of many pieces read with the socket registered once (psycopg's
own connection registers it per piece), the same rows as psycopg's own, statements that
must wait to write, errors, and a cancelled wait that leaves nothing registered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from projections.databases.postgres_reading import ReadingConnection

# About 2 MB of rows: PostgreSQL sends it in 8 kB pieces.
MANY_PIECES = "SELECT n, repeat('x', 1000) AS filler FROM generate_series(1, 2000) AS n"


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the sockets registered for reading."""

    readers = 0

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        self.readers += 1
        super().add_reader(fd, callback, *args)


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


def test_a_cancelled_wait_leaves_no_socket_registered(pg_dsn: str) -> None:
    async def cancelled() -> tuple[bool, Any]:
        connection = await ReadingConnection.connect(pg_dsn, autocommit=True)
        try:
            waiting = asyncio.ensure_future(connection.execute("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            still_registered = asyncio.get_running_loop().remove_reader(connection.fileno())
            return still_registered, connection.info.transaction_status
        finally:
            connection.pgconn.finish()  # its statement still runs: no goodbye, just close

    still_registered, status = asyncio.run(asyncio.wait_for(cancelled(), 10))
    assert not still_registered
    assert status == psycopg.pq.TransactionStatus.ACTIVE  # the pool closes such a one
