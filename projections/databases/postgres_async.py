"""The asynchronous PostgreSQL adapter of the read-model port (psycopg 3's asyncio
connections and pool): a server's queries run on its event loop, with no thread hop."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from projections.databases.errors import DatabaseBusy
from projections.databases.port import (
    AsyncDatabase,
    AsyncDatabaseLender,
    JsonPage,
    JsonQuery,
    Row,
)
from projections.databases.postgres import (
    POSTGRES,
    PostgresDatabase,
    pool_arguments,
    translate,
)
from projections.databases.postgres_json import json_select
from projections.databases.postgres_pages import NotBatched, batch, pages, pages_statement
from projections.databases.postgres_prepared import prepared_rows

T = TypeVar("T")


class AsyncPostgresDatabase(AsyncDatabase):
    """One pooled asyncio connection (autocommit) for the length of a loan."""

    def __init__(self, connection: Any, missing: set[str] | None = None) -> None:
        self._connection = connection
        # The stored-text columns this database lacks (shared by a pool's connections).
        self._missing = set() if missing is None else missing

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
        return await self._stored_or_written(self._json_rows, [query])

    async def _json_rows(self, queries: Sequence[JsonQuery]) -> list[tuple[bytes, tuple[Any, ...]]]:
        (query,) = queries
        # Keyed by text (hashes kept by each string), not by enum members (hashed in Python).
        formats = tuple(kind.value for kind in query.columns.values())
        statement = _json_statement(
            query.statement,
            tuple(query.columns),
            formats,
            query.order,
            query.keys,
            stored=query.stored,
        )
        cursor = await self._connection.execute(statement, query.params)
        return [(record[0].encode(), record[1:]) for record in await cursor.fetchall()]

    async def _stored_or_written(
        self, run: Callable[[Sequence[JsonQuery]], Awaitable[T]], queries: Sequence[JsonQuery]
    ) -> T:
        """``run`` over ``queries``, each written by the query where its stored text's
        column is missing: a database made by an older version (a server started before a
        newer projector, a snapshot, a role that cannot add it). Found by the first page
        asking for it, then remembered; the error leaves an autocommit connection usable."""
        import psycopg

        if self._missing:
            queries = [_written(query, self._missing) for query in queries]
        try:
            return await run(queries)
        except psycopg.errors.UndefinedColumn:
            stored = {query.stored for query in queries if query.stored is not None}
            if not stored:
                raise
            self._missing.update(stored)
            return await run([_written(query, self._missing) for query in queries])

    async def json_pages(self, queries: Sequence[JsonQuery]) -> list[JsonPage]:
        """One statement for them all (postgres_pages.py); one query alone as `json_rows`
        (its own statement costs PostgreSQL less than a batch of one)."""
        if len(queries) < 2:
            return await super().json_pages(queries)
        return await self._stored_or_written(self._json_pages, queries)

    async def _json_pages(self, queries: Sequence[JsonQuery]) -> list[JsonPage]:
        try:
            shapes, params = batch(queries)
            statement = pages_statement(shapes)
        except NotBatched:
            return await super().json_pages(queries)
        records = await prepared_rows(self._connection, statement, params)
        return pages(records, len(queries))

    def param(self, value: Any) -> Any:
        return _BINDER.param(value)


def _written(query: JsonQuery, missing: set[str]) -> JsonQuery:
    """``query`` written by the query where its stored text's column is ``missing``."""
    return dataclasses.replace(query, stored=None) if query.stored in missing else query


@functools.lru_cache(maxsize=256)
def _json_statement(
    query: str,
    columns: tuple[str, ...],
    formats: tuple[str, ...],
    order: str,
    keys: tuple[str, ...],
    *,
    stored: str | None,
) -> str:
    """``query``'s rows as JSON text with their keys, in psycopg's placeholders; a page's
    filters make a few shapes of query, each written once. The rows are ordered again
    around the query (a subquery's order is not kept)."""
    return POSTGRES.sql(f"{json_select(query, columns, formats, keys, stored)} ORDER BY {order}")


# Binds values as the blocking adapter does (it holds no connection for that).
_BINDER = PostgresDatabase("")


class AsyncPostgresPool(AsyncDatabaseLender):
    """A psycopg asyncio pool over the DSN's database (autocommit connections)."""

    def __init__(self, dsn: str, size: int, wait_s: float = 5.0) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.wait_s = wait_s
        self._where = PostgresDatabase(dsn).where()  # for messages, parsed once
        from projections.databases.postgres_reading import ReadingConnection

        self._pool = AsyncConnectionPool(
            connection_class=ReadingConnection,
            **pool_arguments(dsn, size, "evledger-read-models-async"),
        )
        self._missing: set[str] = set()  # stored-text columns the database lacks

    async def open(self) -> None:
        # Do not wait for the server: a request that comes without it gets a 503.
        await self._pool.open(wait=False)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AsyncDatabase]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self._pool.connection(timeout=self.wait_s) as connection:
                yield AsyncPostgresDatabase(connection, self._missing)
        except PoolTimeout as error:
            raise DatabaseBusy(
                f"{self._where}: no free connection within {self.wait_s:g} s"
            ) from error
        except psycopg.Error as error:
            raise translate(error, self._where) from error

    async def close(self) -> None:
        await self._pool.close()
