"""The PostgreSQL adapter of the read-model ``Database`` port (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar

from projections.databases.errors import (
    DatabaseBusy,
    DatabaseIntegrityError,
    DatabaseProgrammingError,
    DatabaseUnavailable,
    DatabaseValueError,
    MissingTable,
    ReadModelDatabaseError,
    first_line,
)
from projections.databases.port import (
    COMMON_TYPES,
    STREAM_ROWS,
    Chunk,
    Database,
    DatabaseLender,
    Dialect,
    Row,
    rows_of,
    to_json,
)
from projections.databases.postgres_json import json_text

if TYPE_CHECKING:  # psycopg is imported when first used: commands without PostgreSQL start faster
    import psycopg

POSTGRES = Dialect(
    types={
        **COMMON_TYPES,
        "ts": "TIMESTAMPTZ",
        "local_ts": "TIMESTAMP",
        "kwh": "NUMERIC(14,3)",
        "decimal": "NUMERIC(20,6)",
        "json": "JSONB",
    },
    in_keys="IN (SELECT jsonb_array_elements_text(CAST(? AS JSONB)))",
    placeholder="%s",
    json_text=json_text,
)


@dataclass
class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3; tables live in ``schema`` (created if missing), or
    where the DSN's search_path puts them when no schema is given."""

    dialect: ClassVar[Dialect] = POSTGRES

    dsn: str
    schema: str | None = None
    _connection: Any = field(default=None, repr=False)
    _types: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        if self._connection is not None and not self._connection.closed:
            if not self._connection.broken:
                return self._connection
            self._connection.close()
        connection = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        if self.schema is not None:
            schema = sql.Identifier(self.schema)
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            connection.execute(sql.SQL("SET search_path TO {}").format(schema))
        self._connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._translated(), self._connect().transaction():
            yield

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._translated():
            cursor = self._connect().execute(self.dialect.sql(statement), params or None)
            return rows_of(cursor.description, cursor.fetchall() if cursor.description else [])

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._translated(), self._connect().cursor() as cursor:
            cursor.executemany(self.dialect.sql(statement), rows)

    def stream_chunks(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Chunk]:
        with self._translated(), self._connect().cursor() as cursor:
            records = cursor.stream(self.dialect.sql(statement), size=size)
            while chunk := list(islice(records, size)):
                yield [column.name for column in cursor.description or ()], chunk

    def stream_binary(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Chunk]:
        """``stream_chunks`` of ``statement`` sent as it is written (no dialect fields) with
        its rows in PostgreSQL's binary format: a ``bytea`` column comes as bytes, without
        the text format's hex to parse."""
        with self._translated(), self._connect().cursor(binary=True) as cursor:
            records = cursor.stream(statement, size=size)
            while chunk := list(islice(records, size)):
                yield [column.name for column in cursor.description or ()], chunk

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def column_types(self, table: str, columns: Sequence[str]) -> dict[str, str]:
        """The SQL types of a table's columns, read once (again if a column is new)."""
        known = self._types.get(table, {})
        if not all(column in known for column in columns):
            rows = self.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = ? AND table_schema = current_schema()",
                [table],
            )
            known = self._types[table] = {row["column_name"]: row["data_type"] for row in rows}
        return known

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        values: Sequence[Sequence[Any]],
        on_conflict: str,
    ) -> None:
        """One array parameter per column, unnested: a batch's rows in one short statement.
        A multi-row VALUES binds a parameter per value, and parsing and binding thousands
        of them in psycopg took a large share of a rebuild. The arrays go in binary (``%b``):
        the text format escapes every element with a regular expression, four times slower."""
        types = self.column_types(table, columns)
        arrays = ", ".join(f"%b::{types[column]}[]" for column in columns)
        self.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            + on_conflict,
            [list(column) for column in values],
        )

    # psycopg binds timestamps and Decimals itself (param gives them back).
    bound_as_is = Database.bound_as_is | {datetime, Decimal}

    def param(self, value: Any) -> Any:
        """Lists and dicts as JSONB (Decimals kept exact)."""
        if isinstance(value, dict | list):
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=to_json)
        return value

    def where(self) -> str:
        """The server, database and schema, for messages (never the password)."""
        import psycopg

        try:
            info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.Error:
            return "PostgreSQL"
        place = f"PostgreSQL {info.get('dbname', '')} at {info.get('host', 'localhost')}"
        place += f":{info.get('port', 5432)}"
        return place + (f" (schema {self.schema})" if self.schema else "")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as error:
            raise translate(error, self.where()) from error


def translate(error: psycopg.Error, where: str) -> ReadModelDatabaseError:
    """psycopg's error as the read-model databases' own."""
    import psycopg
    from psycopg import errors

    message = f"{where}: {first_line(error)}"
    kind: type[ReadModelDatabaseError]
    if isinstance(error, errors.LockNotAvailable | errors.QueryCanceled):
        kind = DatabaseBusy  # lock_timeout or statement_timeout ran out
    elif isinstance(
        error, errors.TransactionRollback | errors.SerializationFailure | errors.DeadlockDetected
    ):
        # Another transaction won. Named one by one: psycopg's class per SQLSTATE derives
        # from OperationalError, not from its class's TransactionRollback (40000).
        kind = DatabaseBusy
    elif isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        kind = DatabaseUnavailable
    elif isinstance(error, errors.UndefinedTable):
        kind = MissingTable
    elif isinstance(error, psycopg.ProgrammingError):
        kind = DatabaseProgrammingError
    elif isinstance(error, psycopg.DataError):
        kind = DatabaseValueError
    elif isinstance(error, psycopg.IntegrityError):
        kind = DatabaseIntegrityError
    else:
        kind = ReadModelDatabaseError
    return kind(message)


@dataclass
class _PooledPostgres(PostgresDatabase):
    """A connection borrowed from a pool: closing it gives it back to the pool."""

    def _connect(self) -> Any:
        return self._connection

    def close(self) -> None:
        """The pool takes the connection back when the loan ends."""


def in_utc(dsn: str) -> str:
    """``dsn`` with its sessions in UTC (its other options kept): the API's pools, so that
    every time an answer spells, loaded or written by PostgreSQL, is in UTC with `Z`."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} -c TimeZone=UTC".strip())


def pool_arguments(dsn: str, size: int, name: str) -> dict[str, Any]:
    """How both psycopg pools (blocking here, asyncio in postgres_async.py) are built:
    autocommit connections in UTC, one kept and up to ``size``, opened by ``open()`` later."""
    return {
        "conninfo": in_utc(dsn),
        "min_size": 1,
        "max_size": size,
        "kwargs": {"autocommit": True, "connect_timeout": 5},
        "open": False,
        "name": name,
    }


# How long `reachable` waits for the server (a host that drops packets, say) before it says so.
REACHABLE_TIMEOUT_S = 3


class PostgresPool(DatabaseLender):
    """A psycopg connection pool over the DSN's database (autocommit connections)."""

    def __init__(self, dsn: str, size: int, wait_s: float = 5.0) -> None:
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        self.wait_s = wait_s
        # For messages; parsed once, not on every loan.
        self._where = PostgresDatabase(dsn).where()
        self._pool = ConnectionPool(**pool_arguments(dsn, size, "evledger-read-models"))

    def open(self) -> None:
        # Do not wait for the server: a caller that starts without it says so when asked.
        self._pool.open(wait=False)

    @contextmanager
    def lend(self) -> Iterator[Database]:
        from psycopg_pool import PoolTimeout

        where = self._where
        try:
            with self._pool.connection(timeout=self.wait_s) as connection:
                yield _PooledPostgres(self.dsn, _connection=connection)
        except PoolTimeout as error:
            raise DatabaseBusy(f"{where}: no free connection within {self.wait_s:g} s") from error
        except Exception as error:
            import psycopg

            if isinstance(error, psycopg.Error):
                raise translate(error, where) from error
            raise

    def reachable(self) -> None:
        import psycopg

        try:
            psycopg.connect(self.dsn, connect_timeout=REACHABLE_TIMEOUT_S).close()
        except psycopg.Error as error:
            # libpq's message names host, port, user and the reason, never the password.
            raise DatabaseUnavailable(f"{self._where}: {first_line(error)}") from error

    def close(self) -> None:
        self._pool.close()


def drop_schema(dsn: str, schema: str) -> None:
    """Drop ``schema`` and everything in it (a rebuild's or a snapshot's place), on a
    connection of its own; errors are the read-model databases' own."""
    import psycopg
    from psycopg import sql

    where = PostgresDatabase(dsn, schema).where()
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
    except psycopg.Error as error:
        raise translate(error, where) from error


def drop_database(dsn: str, name: str, attempts: int = 20) -> None:
    """Drop database ``name`` (a test's or a benchmark's own), ending its sessions. FORCE
    cannot end the server's own workers (autovacuum runs as the superuser), so a refusal
    is waited out for a while instead of reported at once."""
    import time

    import psycopg
    from psycopg import errors, sql

    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(1, attempts + 1):
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as admin:
                admin.execute(statement)
            return
        except (errors.InsufficientPrivilege, errors.ObjectInUse) as error:
            if attempt == attempts:
                raise translate(error, PostgresDatabase(dsn).where()) from error
            time.sleep(0.5)
