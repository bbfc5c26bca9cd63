"""The DuckDB adapter of the read-model ``Database`` port: the analytics file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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
    Database,
    Dialect,
    Row,
    rows_of,
)

if TYPE_CHECKING:  # duckdb is imported when first used: commands without it start faster
    import duckdb

# Timestamps are TIMESTAMP in UTC, because fetching a TIMESTAMPTZ into Python needs pytz,
# which the project does not depend on.
DUCKDB = Dialect(
    types={
        **COMMON_TYPES,
        "ts": "TIMESTAMP",
        "local_ts": "TIMESTAMP",
        "kwh": "DECIMAL(14,3)",
        "decimal": "DECIMAL(18,6)",
        "json": "JSON",
    },
)


@dataclass
class DuckDatabase(Database):
    """DuckDB file for analytics; ``read_only`` for analysts' queries."""

    dialect: ClassVar[Dialect] = DUCKDB

    path: Path
    read_only: bool = False
    # DuckDB's own default is 80% of the machine's memory, and its buffer keeps pages of
    # a growing file up to that: a bound keeps a projector's memory flat in ledger size.
    memory_limit_mib: int | None = None
    _connection: Any = field(default=None, repr=False)
    _types: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def _connect(self) -> Any:
        import duckdb

        if self._connection is None:
            if not self.read_only:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise DatabaseUnavailable(f"DuckDB {self.path}: {error}") from error
            config: dict[str, str | bool | int | float | list[str]] = (
                {"enable_external_access": False} if self.read_only else {}
            )
            if self.memory_limit_mib is not None:
                config["memory_limit"] = f"{self.memory_limit_mib}MiB"
            self._connection = duckdb.connect(
                str(self.path), read_only=self.read_only, config=config
            )
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._translated():
            connection = self._connect()
            connection.begin()
        try:
            yield
        except BaseException:
            with self._translated():
                connection.rollback()
            raise
        with self._translated():
            connection.commit()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._translated():
            connection = self._connect()
            connection.execute(self.dialect.sql(statement), list(params) or None)
            return rows_of(
                connection.description, connection.fetchall() if connection.description else []
            )

    def stream(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Row]:
        # On the connection itself, inside whatever transaction it has open; the caller
        # runs nothing else on it until the rows are read.
        with self._translated():
            connection = self._connect()
            connection.execute(self.dialect.sql(statement))
            names = [column[0] for column in connection.description or ()]
        while True:
            with self._translated():
                chunk = connection.fetchmany(size)
            if not chunk:
                return
            for record in chunk:
                yield dict(zip(names, record, strict=True))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._translated():
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

    def param(self, value: Any) -> Any:
        """Aware timestamps as the naive UTC ones the TIMESTAMP columns hold."""
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return super().param(value)

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        records: Sequence[Sequence[Any]],
        on_conflict: str,
    ) -> None:
        """One list parameter per column, unnested: DuckDB binds a multi-row VALUES ten
        times slower, and this runs without pandas or pyarrow."""
        types = self.column_types(table)
        selected = ", ".join(f"UNNEST(?::{types[column]}[])" for column in columns)
        self.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected} {on_conflict}",
            [list(values) for values in zip(*records, strict=True)],
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        import duckdb

        try:
            yield
        except duckdb.Error as error:
            raise translate(error, f"DuckDB {self.path}") from error


def translate(error: duckdb.Error, where: str) -> ReadModelDatabaseError:
    """duckdb's error as the read-model databases' own."""
    import duckdb

    message = f"{where}: {first_line(error)}"
    text = str(error)
    kind: type[ReadModelDatabaseError]
    if isinstance(error, duckdb.IOException):
        # DuckDB allows one process to write a file; another one holding it is busy.
        kind = DatabaseBusy if "lock" in text else DatabaseUnavailable
    elif isinstance(error, duckdb.TransactionException) and "onflict" in text:
        kind = DatabaseBusy
    elif isinstance(error, duckdb.ConnectionException):
        kind = DatabaseUnavailable
    elif isinstance(error, duckdb.CatalogException) and "does not exist" in text:
        kind = MissingTable
    elif isinstance(error, duckdb.ProgrammingError | duckdb.TransactionException):
        kind = DatabaseProgrammingError
    elif isinstance(error, duckdb.DataError):
        kind = DatabaseValueError
    elif isinstance(error, duckdb.IntegrityError):
        kind = DatabaseIntegrityError
    else:
        kind = ReadModelDatabaseError
    return kind(message)
