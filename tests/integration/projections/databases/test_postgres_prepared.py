"""Statements run prepared through the libpq connection (`postgres_prepared.prepared_rows`,
the history pages' batches) on the real PostgreSQL server: rows loaded as a cursor loads
them, prepared once per connection, a server error raised as psycopg's and the connection
usable after it, a statement kept prepared through failing runs, a plan the server can no
longer use closed and prepared again, statements past the most kept run unnamed, and a
cancelled run cancelled on the server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import pytest

from projections.databases import postgres_prepared
from projections.databases.postgres_prepared import prepared_rows
from projections.databases.postgres_reading import ReadingConnection

pytestmark = pytest.mark.postgres

T = TypeVar("T")
ROWS = b"SELECT n, n::text AS t, $1::timestamptz AS at FROM generate_series(1, $2::int) AS n"


def run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(work, 30))


async def prepared_names(connection: psycopg.AsyncConnection[Any]) -> list[str]:
    cursor = await connection.execute(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'evledger_pages_%%'"
    )
    return [name for (name,) in await cursor.fetchall()]


def test_rows_are_loaded_as_a_cursor_loads_them_from_one_prepared_statement(
    pg_dsn: str,
) -> None:
    async def twice() -> tuple[list[Any], list[Any], list[Any], list[str]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            params = ["2025-03-01T10:00:00.5+00:00", "3"]
            first = await prepared_rows(connection, ROWS, params)
            second = await prepared_rows(connection, ROWS, [params[0], "1"])
            cursor = await connection.execute(
                ROWS.decode().replace("$1", "%s").replace("$2", "%s"), params
            )
            return first, second, await cursor.fetchall(), await prepared_names(connection)

    first, second, theirs, names = run(twice())
    moment = datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert first == theirs == [(1, "1", moment), (2, "2", moment), (3, "3", moment)]
    assert second == [(1, "1", moment)]
    assert len(names) == 1  # prepared once, run twice


def test_a_server_error_is_psycopgs_and_the_connection_answers_after_it(pg_dsn: str) -> None:
    async def failing() -> list[Any]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            with pytest.raises(psycopg.errors.InvalidTextRepresentation):
                await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "three"])
            with pytest.raises(psycopg.errors.UndefinedTable):
                await prepared_rows(connection, b"SELECT * FROM no_such_table", [])
            assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            return await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "1"])

    assert len(run(failing())) == 1


def test_a_plan_the_server_can_no_longer_use_is_prepared_again(pg_dsn: str) -> None:
    statement = b"SELECT * FROM changing WHERE a = $1::int"

    async def changed() -> tuple[list[Any], list[Any], list[str], list[str]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            await connection.execute("CREATE TEMP TABLE changing (a int)")
            await connection.execute("INSERT INTO changing VALUES (1)")
            before = await prepared_rows(connection, statement, ["1"])
            old = await prepared_names(connection)
            await connection.execute("ALTER TABLE changing ADD COLUMN b text DEFAULT 'x'")
            # The prepared plan's result type changed: the server refuses it, once.
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                await prepared_rows(connection, statement, ["1"])
            after = await prepared_rows(connection, statement, ["1"])
            return before, after, old, await prepared_names(connection)

    before, after, old, new = run(changed())
    assert before == [(1,)]
    assert after == [(1, "x")]
    assert len(new) == 1 and new != old  # the old name closed, not left on the server


def test_a_name_the_server_lost_is_prepared_again(pg_dsn: str) -> None:
    async def lost() -> tuple[list[Any], list[str]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "1"])
            await connection.execute("DEALLOCATE ALL")
            with pytest.raises(psycopg.errors.InvalidSqlStatementName):
                await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "1"])
            rows = await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "2"])
            return rows, await prepared_names(connection)

    rows, names = run(lost())
    assert len(rows) == 2
    assert len(names) == 1


def test_failing_runs_keep_their_statement_prepared_once(pg_dsn: str) -> None:
    sleeping = b"SELECT pg_sleep($1::float8)"

    async def timing_out() -> tuple[list[str], int]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            await connection.execute("SET statement_timeout = '10ms'")
            for _ in range(30):
                with pytest.raises(psycopg.errors.QueryCanceled):
                    await prepared_rows(connection, sleeping, ["0.2"])
            for _ in range(30):
                with pytest.raises(psycopg.errors.InvalidTextRepresentation):
                    await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "x"])
            await connection.execute("SET statement_timeout = 0")
            cursor = await connection.execute("SELECT count(*) FROM pg_prepared_statements")
            (everything,) = await cursor.fetchone() or (None,)
            return await prepared_names(connection), everything

    names, everything = run(timing_out())
    assert len(names) == 2  # one per statement, not one per failing run
    assert everything == 2


def test_statements_past_the_most_kept_run_unnamed(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_prepared, "MOST_PREPARED", 2)

    async def many() -> tuple[list[list[Any]], list[str]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            answers = [
                await prepared_rows(connection, b"SELECT %d + $1::int" % number, ["1"])
                for number in range(4)
            ]
            return answers, await prepared_names(connection)

    answers, names = run(many())
    assert answers == [[(1,)], [(2,)], [(3,)], [(4,)]]
    assert len(names) == 2


def test_a_cancelled_run_is_cancelled_on_the_server(pg_dsn: str) -> None:
    async def cancelled() -> tuple[Any, list[Any]]:
        async with await ReadingConnection.connect(pg_dsn, autocommit=True) as connection:
            waiting = asyncio.ensure_future(
                prepared_rows(connection, b"SELECT pg_sleep($1::float8)", ["30"])
            )
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            async with await psycopg.AsyncConnection.connect(pg_dsn) as other:
                cursor = await other.execute(
                    "SELECT state FROM pg_stat_activity WHERE pid = %s",
                    [connection.info.backend_pid],
                )
                server = await cursor.fetchone()
            return server, await prepared_rows(connection, ROWS, ["2025-03-01T10:00:00Z", "2"])

    server, rows = run(cancelled())
    assert server == ("idle",)
    assert len(rows) == 2
