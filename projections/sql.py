"""The SQL differences between PostgreSQL, SQLite and DuckDB, in one place, and the
small database handle the read models write and query through.

Statements are written once with ``?`` placeholders and ``{type}`` fields for the column
types; each dialect fills them in. SQLite (the embedded default's read models) has no
timestamp, decimal or JSON types, so those are stored as text in forms that sort and
compare correctly, and converted back on reading.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

Row = dict[str, Any]


def _json_default(value: object) -> str:
    if isinstance(value, Decimal | datetime):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    """JSON text with Decimals kept exact (as strings)."""
    return json.dumps(value, default=_json_default, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Dialect:
    """Column types and placeholder style of one database."""

    name: str
    types: Mapping[str, str]
    placeholder: str = "?"
    json_as_text: bool = True

    def sql(self, statement: str) -> str:
        """Fill in the column types and this database's placeholder."""
        filled = statement.format_map(self.types)
        return filled.replace("?", self.placeholder) if self.placeholder != "?" else filled

    def param(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            if self.json_as_text:
                return to_json(value)
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=to_json)
        if self.name == "sqlite":
            if isinstance(value, datetime):
                return sqlite_timestamp(value)
            if isinstance(value, Decimal):
                return str(value)
        if self.name == "duckdb" and isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value


_COMMON = {
    "text": "TEXT",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "bool": "BOOLEAN",
}

POSTGRES = Dialect(
    name="postgres",
    types={
        **_COMMON,
        "ts": "TIMESTAMPTZ",
        "local_ts": "TIMESTAMP",
        "kwh": "NUMERIC(14,3)",
        "decimal": "NUMERIC(20,6)",
        "json": "JSONB",
    },
    placeholder="%s",
    json_as_text=False,
)
# SQLite: declared types pick the converters registered below (and TEXT affinity for
# decimals, so that 12.345 is never turned into a float).
SQLITE = Dialect(
    name="sqlite",
    types={
        **_COMMON,
        "ts": "TIMESTAMPTZ",
        "local_ts": "TIMESTAMPTZ",
        "kwh": "TEXT_DECIMAL",
        "decimal": "TEXT_DECIMAL",
        "json": "JSON_TEXT",
    },
)
# DuckDB: timestamps are TIMESTAMP in UTC, because fetching a TIMESTAMPTZ into Python
# needs pytz, which the project does not depend on.
DUCKDB = Dialect(
    name="duckdb",
    types={
        **_COMMON,
        "ts": "TIMESTAMP",
        "local_ts": "TIMESTAMP",
        "kwh": "DECIMAL(14,3)",
        "decimal": "DECIMAL(18,6)",
        "json": "JSON",
    },
)


def sqlite_timestamp(moment: datetime) -> str:
    """UTC, fixed width: text order is time order, so keyset pagination works on it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


sqlite3.register_converter("TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()))
sqlite3.register_converter("TEXT_DECIMAL", lambda raw: Decimal(raw.decode()))
sqlite3.register_converter("JSON_TEXT", lambda raw: json.loads(raw.decode()))
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))


class Database(Protocol):
    """A connection to one read-model database, used by one thread."""

    dialect: Dialect

    def transaction(self) -> Any:
        """A context manager: everything inside commits together or not at all."""

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders, ``{type}`` fields); rows if it returns any."""

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def close(self) -> None: ...


def _rows(description: Any, records: Sequence[Sequence[Any]]) -> list[Row]:
    if description is None:
        return []
    names = [column[0] for column in description]
    return [dict(zip(names, record, strict=True)) for record in records]


@dataclass
class PostgresDatabase:
    """PostgreSQL through psycopg 3; tables live in ``schema`` (created if missing), or
    where the DSN's search_path puts them when no schema is given."""

    dsn: str
    schema: str | None = None
    dialect: Dialect = POSTGRES
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
        return _rows(cursor.description, cursor.fetchall() if cursor.description else [])

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._connect().cursor() as cursor:
            cursor.executemany(self.dialect.sql(statement), rows)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class SqliteDatabase:
    """SQLite file for the embedded default's history and refund views."""

    path: Path
    dialect: Dialect = SQLITE
    _connection: sqlite3.Connection | None = field(default=None, repr=False)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path,
                isolation_level=None,  # transactions are explicit, below
                detect_types=sqlite3.PARSE_DECLTYPES,
                timeout=30,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            self._connection = connection
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        connection = self._connect()
        # IMMEDIATE takes the write lock first: two projectors queue instead of deadlocking.
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connect().execute(self.dialect.sql(statement), params)
        return _rows(cursor.description, cursor.fetchall())

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connect().executemany(self.dialect.sql(statement), rows)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class DuckDatabase:
    """DuckDB file for analytics; ``read_only`` for analysts' queries."""

    path: Path
    read_only: bool = False
    dialect: Dialect = DUCKDB
    _connection: Any = field(default=None, repr=False)
    _types: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def _connect(self) -> Any:
        import duckdb

        if self._connection is None:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            config: dict[str, str | bool | int | float | list[str]] = (
                {"enable_external_access": False} if self.read_only else {}
            )
            self._connection = duckdb.connect(
                str(self.path), read_only=self.read_only, config=config
            )
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        connection = self._connect()
        connection.begin()
        try:
            yield
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        connection = self._connect()
        connection.execute(self.dialect.sql(statement), list(params) or None)
        return _rows(
            connection.description, connection.fetchall() if connection.description else []
        )

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connect().executemany(self.dialect.sql(statement), [list(row) for row in rows])

    def column_types(self, table: str) -> dict[str, str]:
        if table not in self._types:
            rows = self.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = ?",
                [table],
            )
            self._types[table] = {row["column_name"]: row["data_type"] for row in rows}
        return self._types[table]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# Rows per multi-row INSERT: well under every database's limit on bound parameters.
_MAX_PARAMS = 20_000


def upsert(
    db: Database,
    table: str,
    key_columns: Sequence[str],
    rows: Mapping[tuple[Any, ...], Mapping[str, Any]],
) -> None:
    """Insert or fill rows: a non-null value wins, a null never clears a stored value.

    Fact columns cannot be NOT NULL: PostgreSQL checks the proposed row (only the columns
    one batch knows) before it finds the conflict that turns the insert into an update.

    Keys must be unique within ``rows`` (fold first): one statement may not touch a row twice.
    """
    by_columns: dict[tuple[str, ...], list[list[Any]]] = {}
    for key, values in rows.items():
        columns = tuple(sorted(values))
        record = [*key, *(db.dialect.param(values[column]) for column in columns)]
        by_columns.setdefault(columns, []).append(record)
    for columns, records in by_columns.items():
        all_columns = [*key_columns, *columns]
        row_placeholder = "(" + ", ".join("?" for _ in all_columns) + ")"
        if columns:
            assignments = ", ".join(
                f"{column} = COALESCE(excluded.{column}, {table}.{column})" for column in columns
            )
            conflict = f"DO UPDATE SET {assignments}"
        else:
            conflict = "DO NOTHING"
        if isinstance(db, DuckDatabase):
            _duckdb_columnar_insert(
                db,
                table,
                columns=all_columns,
                records=records,
                conflict=conflict,
                key_columns=key_columns,
            )
            continue
        per_statement = max(1, _MAX_PARAMS // len(all_columns))
        for start in range(0, len(records), per_statement):
            chunk = records[start : start + per_statement]
            statement = (
                f"INSERT INTO {table} ({', '.join(all_columns)}) VALUES "
                + ", ".join(row_placeholder for _ in chunk)
                + f" ON CONFLICT ({', '.join(key_columns)}) {conflict}"
            )
            db.execute(statement, [value for record in chunk for value in record])


def _duckdb_columnar_insert(
    db: DuckDatabase,
    table: str,
    *,
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
    conflict: str,
    key_columns: Sequence[str],
) -> None:
    """One list parameter per column, unnested: DuckDB binds a multi-row VALUES ten times
    slower, and this runs without pandas or pyarrow."""
    types = db.column_types(table)
    selected = ", ".join(f"UNNEST(?::{types[column]}[])" for column in columns)
    db.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected}"
        f" ON CONFLICT ({', '.join(key_columns)}) {conflict}",
        [list(values) for values in zip(*records, strict=True)],
    )
