"""The asynchronous PostgreSQL adapter of the read-model port (asyncpg's connections and
pool): a server's queries run on its event loop, with no thread hop. asyncpg, not psycopg's
asyncio pool, for its protocol written in Cython: a history page cost the server about a
fifth less CPU. It reads the same DSN as every other connection (asyncpg_arguments)."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections.databases.errors import (
    DatabaseBusy,
    DatabaseIntegrityError,
    DatabaseProgrammingError,
    DatabaseUnavailable,
    DatabaseValueError,
    MissingTable,
    ReadModelDatabaseError,
    classified,
)
from projections.databases.port import (
    AsyncDatabase,
    AsyncDatabaseLender,
    JsonFormat,
    Row,
    to_json,
)
from projections.databases.postgres import POSTGRES, PostgresDatabase

# libpq's DSN parameters that asyncpg reads from a DSN of its own (TLS above all), beside
# the ones passed as arguments (asyncpg_arguments).
_ASYNCPG_DSN_PARAMS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
    "passfile",
    "target_session_attrs",
)
# libpq's parameters that are the server's settings at connection (options=-c...).
_SERVER_SETTINGS = ("options", "application_name")


class UnsupportedDsn(ValueError):
    """A DSN parameter the event loop's pool cannot honour (rather than silently drop)."""


def asyncpg_arguments(dsn: str) -> dict[str, Any]:
    """asyncpg.connect()'s arguments for a libpq DSN (URI or key=value)."""
    from urllib.parse import urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    unknown = set(params) - {
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "connect_timeout",
        *_ASYNCPG_DSN_PARAMS,
        *_SERVER_SETTINGS,
    }
    if unknown:
        raise UnsupportedDsn(
            f"the API's event-loop pool (asyncpg) does not support the DSN parameter(s) "
            f"{', '.join(sorted(unknown))}"
        )
    arguments: dict[str, Any] = {
        "dsn": "postgresql://?"
        + urlencode({key: params[key] for key in _ASYNCPG_DSN_PARAMS if key in params}),
        "server_settings": {key: params[key] for key in _SERVER_SETTINGS if key in params},
    }
    for ours, theirs in (("host", "host"), ("user", "user"), ("password", "password")):
        if ours in params:
            arguments[theirs] = params[ours]
    if "dbname" in params:
        arguments["database"] = params["dbname"]
    if "port" in params:
        arguments["port"] = int(params["port"])
    if "connect_timeout" in params:
        arguments["timeout"] = float(params["connect_timeout"])
    return arguments


def translate_asyncpg(error: BaseException, where: str) -> ReadModelDatabaseError:
    """asyncpg's error (or a socket's) as the read-model databases' own, the same kinds as
    psycopg's (postgres.py:translate)."""
    import asyncpg
    from asyncpg import exceptions

    return classified(
        error,
        where,
        [
            (
                (
                    exceptions.LockNotAvailableError,
                    exceptions.QueryCanceledError,
                    exceptions.TransactionRollbackError,
                ),
                DatabaseBusy,
            ),
            (exceptions.UndefinedTableError, MissingTable),
            (
                (
                    OSError,
                    asyncio.TimeoutError,
                    asyncpg.InterfaceError,
                    exceptions.PostgresConnectionError,
                    exceptions.InvalidAuthorizationSpecificationError,
                    exceptions.CannotConnectNowError,
                    exceptions.InvalidCatalogNameError,
                ),
                DatabaseUnavailable,
            ),
            (exceptions.SyntaxOrAccessError, DatabaseProgrammingError),
            (exceptions.DataError, DatabaseValueError),
            (exceptions.IntegrityConstraintViolationError, DatabaseIntegrityError),
        ],
    )


@functools.lru_cache(maxsize=256)
def _numbered(statement: str) -> str:
    """A statement with ``?`` placeholders and ``{type}`` fields in asyncpg's terms ($1...)."""
    numbers = iter(range(1, 1 + statement.count("?")))
    return re.sub(r"\?", lambda _: f"${next(numbers)}", statement.format_map(POSTGRES.types))


class AsyncPostgresDatabase(AsyncDatabase):
    """One pooled asyncpg connection (autocommit) for the length of a loan."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        records = await self._connection.fetch(_numbered(statement), *params)
        return [dict(record.items()) for record in records]

    async def json_rows(
        self, query: str, params: Sequence[Any], columns: Mapping[str, JsonFormat]
    ) -> list[bytes]:
        """Rendered by PostgreSQL (row_to_json), so that no value of the page is converted
        to a Python object and back."""
        # Keyed by text (hashes kept by each string), not by enum members (hashed in Python).
        formats = tuple(kind.value for kind in columns.values())
        statement = _json_statement(query, tuple(columns), formats)
        records = await self._connection.fetch(statement, *params)
        return [record[0].encode() for record in records]

    def param(self, value: Any) -> Any:
        """Lists and dicts as JSON text (asyncpg's own codecs take json and jsonb as text)."""
        if isinstance(value, dict | list):
            return to_json(value)
        return value


# Each format's select-list entry for column {c}, written as pydantic writes the value a
# driver loads: a time in the session's zone as RFC 3339, `Z` for UTC, the microseconds
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
def _json_statement(query: str, columns: tuple[str, ...], formats: tuple[str, ...]) -> str:
    """``query``'s rows as JSON text, in asyncpg's placeholders; a page's filters make a
    few shapes of query, each written once. The query selects the columns as they are
    (its ORDER BY and index see the columns, not their text) and only its rows are
    written as text."""
    written = ", ".join(
        _JSON_COLUMN[JsonFormat(kind)].format(c=name)
        for name, kind in zip(columns, formats, strict=True)
    )
    rows = query.replace("{columns}", ", ".join(columns))
    return _numbered(f"SELECT row_to_json(j)::text FROM (SELECT {written} FROM ({rows}) r) j")


async def _json_codecs(connection: Any) -> None:
    """json and jsonb columns loaded as Python values, as the blocking adapter loads them."""
    import json

    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=lambda value: value, decoder=json.loads, schema="pg_catalog"
        )


async def _kept_as_is(connection: Any) -> None:
    """A loan only queries (the port has no writes), so nothing is left to reset; asyncpg's
    own reset is a round trip per loan."""


class AsyncPostgresPool(AsyncDatabaseLender):
    """An asyncpg pool over the DSN's database (autocommit connections)."""

    def __init__(self, dsn: str, size: int, wait_s: float = 5.0) -> None:
        self.wait_s = wait_s
        self.size = size
        self._arguments = asyncpg_arguments(dsn)
        self._where = PostgresDatabase(dsn).where()  # for messages, parsed once
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg

        # No connection yet: a request that comes without the server gets a 503.
        self._pool = await asyncpg.create_pool(
            min_size=0,
            max_size=self.size,
            init=_json_codecs,
            reset=_kept_as_is,
            **self._arguments,
        )

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AsyncDatabase]:
        import asyncpg

        try:
            connection = await self._pool.acquire(timeout=self.wait_s)
        except TimeoutError as error:
            raise DatabaseBusy(
                f"{self._where}: no free connection within {self.wait_s:g} s"
            ) from error
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise translate_asyncpg(error, self._where) from error
        try:
            yield AsyncPostgresDatabase(connection)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise translate_asyncpg(error, self._where) from error
        finally:
            await self._pool.release(connection)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
