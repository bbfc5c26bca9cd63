"""The asynchronous PostgreSQL adapter of the read-model port (psycopg 3's asyncio
connections and pool): a server's queries run on its event loop, with no thread hop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections.databases.errors import DatabaseBusy
from projections.databases.port import AsyncDatabase, AsyncDatabaseLender, Row
from projections.databases.postgres import (
    POSTGRES,
    PostgresDatabase,
    pool_arguments,
    translate,
)


class AsyncPostgresDatabase(AsyncDatabase):
    """One pooled asyncio connection (autocommit) for the length of a loan."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._connection.execute(POSTGRES.sql(statement), params or None)
        # Column names from the result itself: `cursor.description` builds a Column object
        # (with type lookups) per column at each call, a sixth of a history page's CPU.
        result = cursor.pgresult
        if result is None or not result.nfields:
            return []
        names = [result.fname(index).decode() for index in range(result.nfields)]
        return [dict(zip(names, record, strict=True)) for record in await cursor.fetchall()]

    def param(self, value: Any) -> Any:
        return _BINDER.param(value)


# Binds values as the blocking adapter does (it holds no connection for that).
_BINDER = PostgresDatabase("")


class AsyncPostgresPool(AsyncDatabaseLender):
    """A psycopg asyncio pool over the DSN's database (autocommit connections)."""

    def __init__(self, dsn: str, size: int, wait_s: float = 5.0) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.wait_s = wait_s
        self._where = PostgresDatabase(dsn).where()  # for messages, parsed once
        self._pool = AsyncConnectionPool(**pool_arguments(dsn, size, "evledger-read-models-async"))

    async def open(self) -> None:
        # Do not wait for the server: a request that comes without it gets a 503.
        await self._pool.open(wait=False)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AsyncDatabase]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self._pool.connection(timeout=self.wait_s) as connection:
                yield AsyncPostgresDatabase(connection)
        except PoolTimeout as error:
            raise DatabaseBusy(
                f"{self._where}: no free connection within {self.wait_s:g} s"
            ) from error
        except psycopg.Error as error:
            raise translate(error, self._where) from error

    async def close(self) -> None:
        await self._pool.close()
