"""The asynchronous PostgreSQL adapter of the read-model port (psycopg 3's asyncio
connections and pool): a server's queries run on its event loop, with no thread hop."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections.databases.errors import DatabaseBusy
from projections.databases.port import AsyncDatabase, AsyncDatabaseLender, JsonFormat, Row
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

    async def json_rows(
        self, query: str, params: Sequence[Any], columns: Mapping[str, JsonFormat]
    ) -> list[bytes]:
        """Rendered by PostgreSQL (row_to_json), so that no value of the page is converted
        to a Python object and back."""
        statement = _json_statement(query, tuple(columns.items()))
        cursor = await self._connection.execute(statement, params or None)
        result = cursor.pgresult
        if result is None:
            return []
        return [result.get_value(row, 0) or b"null" for row in range(result.ntuples)]

    def param(self, value: Any) -> Any:
        return _BINDER.param(value)


# Each format's select-list entry for column {c}, written as pydantic writes the value the
# driver would load: a time in the session's zone (psycopg loads it so) as RFC 3339, `Z` for
# UTC, the microseconds only when there are some; a decimal as its exact text.
_TIME = (
    "to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE to_char({c}, 'US') WHEN '000000' THEN '' ELSE to_char({c}, '.US') END"
    " || CASE to_char({c}, 'TZH:TZM') WHEN '+00:00' THEN 'Z' ELSE to_char({c}, 'TZH:TZM') END"
)
_JSON_COLUMN = {
    JsonFormat.PLAIN: "{c}",
    JsonFormat.TIME: _TIME + " AS {c}",
    JsonFormat.DECIMAL: "{c}::text AS {c}",
}


@functools.lru_cache(maxsize=256)
def _json_statement(query: str, columns: tuple[tuple[str, JsonFormat], ...]) -> str:
    """``query``'s rows as JSON text, in PostgreSQL's placeholders; a page's filters make a
    few shapes of query, each written once."""
    selected = ", ".join(_JSON_COLUMN[kind].format(c=name) for name, kind in columns)
    return POSTGRES.sql(
        f"SELECT row_to_json(r)::text FROM ({query.replace('{columns}', selected)}) r"
    )


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
