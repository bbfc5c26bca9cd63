"""The DuckDB adapter of the read-model ``Database`` port: the analytics file."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
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
    BATCH_ROWS,
    COMMON_TYPES,
    STREAM_ROWS,
    Chunk,
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
    # from_json decodes the array's escapes (CAST(? AS VARCHAR[]) would keep \u00e9).
    in_keys="""IN (SELECT unnest(from_json(?, '["VARCHAR"]')))""",
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
            if not self.read_only:
                # The writer's statements are a batch's small upserts, where handing work to
                # other threads costs more CPU than it saves (about 40 % more, measured).
                config["threads"] = 1
            for _ in range(_RECONNECTS):
                before = _inode(self.path)
                self._connection = duckdb.connect(
                    str(self.path), read_only=self.read_only, config=config
                )
                # DuckDB opens the file before it locks it: a rebuild's rename in between
                # (replay/duck_file_swap.py) would leave a writer on the replaced file.
                if self.read_only or before in (None, _inode(self.path)):
                    break
                self._connection.close()
                self._connection = None
            else:
                raise DatabaseBusy(f"DuckDB {self.path}: replaced {_RECONNECTS} times at opening")
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

    def stream_chunks(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Chunk]:
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
            yield names, chunk

    def stream_batches(
        self, statement: str, size: int = BATCH_ROWS
    ) -> Generator[Any, None, None] | None:
        return self._batches(statement, size)

    def _batches(self, statement: str, size: int) -> Generator[Any, None, None]:
        with self._translated():
            reader = self._connect().sql(self.dialect.sql(statement)).to_arrow_reader(size)
        try:
            while True:
                with self._translated():
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                yield batch
        finally:
            reader.close()  # the connection runs nothing else while its result is open

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

    def release_buffer(self) -> None:
        """Checkpoint, then drop the pages the buffer caches, whose memory goes back to the
        system; the limit stays as it was. A scan of the file leaves the buffer full up to
        the limit, which a process reading another file next would hold twice."""
        self.execute("CHECKPOINT")
        try:
            self.execute(f"SET memory_limit = '{_RELEASED_MIB}MiB'")
        finally:
            # From the configured limit: the displayed one is rounded (18.8 GiB came back
            # as 18.7 GiB).
            if self.memory_limit_mib is None:
                self.execute("RESET memory_limit")
            else:
                self.execute(f"SET memory_limit = '{self.memory_limit_mib}MiB'")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # Timestamps only reach insert_rows' Arrow table as they are, which converts aware ones
    # to UTC as param does (its fallback binds them through param): a call per value
    # was a tenth of analytics' rebuild. Decimals, which param gives back as they are,
    # likewise (the Arrow table spells them as text; 150,000 calls at 200,000 events).
    bound_as_is = Database.bound_as_is | {datetime, Decimal}

    def param(self, value: Any) -> Any:
        """Aware timestamps as the naive UTC ones the TIMESTAMP columns hold."""
        if type(value) is datetime and value.tzinfo is UTC:  # the facts' timestamps
            return value.replace(tzinfo=None)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return super().param(value)

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        values: Sequence[Sequence[Any]],
        on_conflict: str,
    ) -> None:
        """The rows as one Arrow table, scanned by the INSERT: DuckDB reads Arrow's
        columns directly, where list parameters are converted value by value (half the
        projector's DuckDB time). Values Arrow does not take as the column's type (a bad
        event's) go the slow way, whose error is DuckDB's own, as before."""
        if not values or not values[0]:
            return
        types = self.column_types(table)
        try:
            batch = arrow_table(columns, [types[column] for column in columns], values)
        except (TypeError, ValueError, OverflowError):  # pyarrow's errors derive from these
            self._insert_unnested(table, columns, types, values, on_conflict)
            return
        # A cast per column: the rows stored are those the typed list parameters gave.
        selected = ", ".join(f"CAST({column} AS {types[column]})" for column in columns)
        with self._translated():
            connection = self._connect()
            connection.register(_ARROW_ROWS, batch)
            try:
                connection.execute(
                    f"INSERT INTO {table} ({', '.join(columns)})"
                    f" SELECT {selected} FROM {_ARROW_ROWS} {on_conflict}"
                )
            finally:
                connection.unregister(_ARROW_ROWS)

    def _insert_unnested(
        self,
        table: str,
        columns: Sequence[str],
        types: dict[str, str],
        values: Sequence[Sequence[Any]],
        on_conflict: str,
    ) -> None:
        """One list parameter per column, unnested (a multi-row VALUES binds ten times
        slower)."""
        selected = ", ".join(f"UNNEST(?::{types[column]}[])" for column in columns)
        param = self.param
        self.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected} {on_conflict}",
            [list(map(param, column)) for column in values],
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        import duckdb

        try:
            yield
        except duckdb.Error as error:
            raise translate(error, f"DuckDB {self.path}") from error


# Tries at opening a file that a rebuild's swap keeps replacing (one is the rule).
_RECONNECTS = 3


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


# The buffer limit that evicts every page not in use (release_buffer).
_RELEASED_MIB = 4

# The name an insert's Arrow table is registered under, for the length of the statement.
_ARROW_ROWS = "evledger_insert_rows"


def arrow_table(
    columns: Sequence[str], types: Sequence[str], values: Sequence[Sequence[Any]]
) -> Any:
    """Rows given column by column (``values[i]`` holds ``columns[i]``) as an Arrow table,
    each column typed after the DuckDB column it fills. Decimals go as text, which DuckDB's
    cast rounds to the column's scale as it rounds a bound Decimal (Arrow refuses a value
    with more digits than the type)."""
    import pyarrow as pa

    by_type = {
        "VARCHAR": pa.string(),
        "JSON": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int64(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    arrays = []
    for column, column_type in zip(values, types, strict=True):
        if column_type.startswith("DECIMAL"):
            arrays.append(pa.array([None if v is None else str(v) for v in column], pa.string()))
        elif column_type in by_type:
            arrays.append(pa.array(column, by_type[column_type]))
        else:
            raise ValueError(f"no Arrow type for DuckDB {column_type}")
    return pa.Table.from_arrays(arrays, names=list(columns))


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
