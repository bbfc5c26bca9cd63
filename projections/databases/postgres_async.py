"""The asynchronous PostgreSQL adapter of the read-model port (psycopg 3's asyncio
connections and pool): a server's queries run on its event loop, with no thread hop."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections.databases.errors import DatabaseBusy
from projections.databases.port import (
    COLUMNS,
    AsyncDatabase,
    AsyncDatabaseLender,
    JsonFormat,
    JsonQuery,
    Row,
)
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

    async def json_rows(self, query: JsonQuery) -> list[tuple[bytes, tuple[Any, ...]]]:
        """Written by PostgreSQL (row_to_json), so that no value of the page is converted
        to a Python object and back; the keys come as plain columns beside the JSON."""
        # Keyed by text (hashes kept by each string), not by enum members (hashed in Python).
        formats = tuple(kind.value for kind in query.columns.values())
        statement = _json_statement(
            query.statement, tuple(query.columns), formats, query.order, query.keys
        )
        cursor = await self._connection.execute(statement, query.params)
        return [(record[0].encode(), record[1:]) for record in await cursor.fetchall()]

    def param(self, value: Any) -> Any:
        return _BINDER.param(value)


# Each format's select-list entry for column {c}, written as pydantic writes the value
# psycopg loads: a time in the session's zone as RFC 3339, `Z` for UTC, the microseconds
# only when there are some (one to_char and two replaces: five to_char calls per time cost
# PostgreSQL about 8% more per page); a decimal as its exact text.
_TIME = (
    "replace(replace(to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'),"
    " '.000000', ''), '+00:00', 'Z')"
)
_JSON_COLUMN = {
    JsonFormat.PLAIN: "{c}",
    JsonFormat.TIME: _TIME + " AS {c}",
    JsonFormat.DECIMAL: "{c}::text AS {c}",
}


@functools.lru_cache(maxsize=256)
def _json_statement(
    query: str,
    columns: tuple[str, ...],
    formats: tuple[str, ...],
    order: str,
    keys: tuple[str, ...],
) -> str:
    """``query``'s rows as JSON text with their keys, in psycopg's placeholders; a page's
    filters make a few shapes of query, each written once. The query selects the columns
    as they are (its ORDER BY and index see the columns, not their text); a select around
    it writes each row as text and orders them again (a subquery's order is not kept)."""
    written = ", ".join(
        _JSON_COLUMN[JsonFormat(kind)].format(c=name)
        for name, kind in zip(columns, formats, strict=True)
    )
    selected = ", ".join([*columns, *(key for key in keys if key not in columns)])
    rows = query.replace(COLUMNS, selected)
    return POSTGRES.sql(
        f"SELECT (SELECT row_to_json(j) FROM (SELECT {written}) j)::text, {', '.join(keys)}"
        f" FROM ({rows}) r ORDER BY {order}"
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
