"""The PostgreSQL adapter of the read-model ``Database`` port (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from projections.databases.port import COMMON_TYPES, Database, Dialect, Row, rows_of, to_json

POSTGRES = Dialect(
    types={
        **COMMON_TYPES,
        "ts": "TIMESTAMPTZ",
        "local_ts": "TIMESTAMP",
        "kwh": "NUMERIC(14,3)",
        "decimal": "NUMERIC(20,6)",
        "json": "JSONB",
    },
    placeholder="%s",
)


@dataclass
class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3; tables live in ``schema`` (created if missing), or
    where the DSN's search_path puts them when no schema is given."""

    dialect: ClassVar[Dialect] = POSTGRES

    dsn: str
    schema: str | None = None
    _connection: Any = field(default=None, repr=False)

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
        with self._connect().transaction():
            yield

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connect().execute(self.dialect.sql(statement), params or None)
        return rows_of(cursor.description, cursor.fetchall() if cursor.description else [])

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._connect().cursor() as cursor:
            cursor.executemany(self.dialect.sql(statement), rows)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def param(self, value: Any) -> Any:
        """Lists and dicts as JSONB (Decimals kept exact)."""
        if isinstance(value, dict | list):
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=to_json)
        return value
