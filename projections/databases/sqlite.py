"""The SQLite adapter of the read-model ``Database`` port: the embedded default's history
and refund views.

SQLite has no timestamp, decimal or JSON types, so those are stored as text in forms that
sort and compare correctly, and converted back on reading by the converters registered here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

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
)

# Declared types pick the converters registered below (and TEXT affinity for decimals, so
# that 12.345 is never turned into a float).
SQLITE = Dialect(
    types={
        **COMMON_TYPES,
        "ts": "TIMESTAMPTZ",
        "local_ts": "TIMESTAMPTZ",
        "kwh": "TEXT_DECIMAL",
        "decimal": "TEXT_DECIMAL",
        "json": "JSON_TEXT",
    },
    in_keys="IN (SELECT value FROM json_each(?))",
)


def sqlite_timestamp(moment: datetime) -> str:
    """UTC, fixed width: text order is time order, so keyset pagination works on it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


sqlite3.register_converter("TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()))
sqlite3.register_converter("TEXT_DECIMAL", lambda raw: Decimal(raw.decode()))
sqlite3.register_converter("JSON_TEXT", lambda raw: json.loads(raw.decode()))
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))


@dataclass
class SqliteDatabase(Database):
    """SQLite file for the embedded default's history and refund views."""

    dialect: ClassVar[Dialect] = SQLITE

    path: Path
    # How long a statement waits for another connection's write lock on the file.
    busy_timeout_s: float = 30.0
    _connection: sqlite3.Connection | None = field(default=None, repr=False)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseUnavailable(f"SQLite {self.path}: {error}") from error
            connection = sqlite3.connect(
                self.path,
                isolation_level=None,  # transactions are explicit, below
                detect_types=sqlite3.PARSE_DECLTYPES,
                timeout=self.busy_timeout_s,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            self._connection = connection
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._translated():
            connection = self._connect()
            # IMMEDIATE takes the write lock first: two projectors queue, not deadlock.
            connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with self._translated():
                connection.execute("ROLLBACK")
            raise
        with self._translated():
            connection.execute("COMMIT")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._translated():
            cursor = self._connect().execute(self.dialect.sql(statement), params)
            return rows_of(cursor.description, cursor.fetchall())

    def stream_chunks(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Chunk]:
        with self._translated():
            cursor = self._connect().execute(self.dialect.sql(statement))
            names = [column[0] for column in cursor.description or ()]
        while True:
            with self._translated():
                chunk = cursor.fetchmany(size)
            if not chunk:
                return
            yield names, chunk

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._translated():
            self._connect().executemany(self.dialect.sql(statement), rows)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def param(self, value: Any) -> Any:
        """Timestamps and decimals as the text the converters above read back."""
        if isinstance(value, datetime):
            return sqlite_timestamp(value if value.tzinfo else value.replace(tzinfo=UTC))
        if isinstance(value, Decimal):
            return str(value)
        return super().param(value)

    def _translated(self) -> AbstractContextManager[None]:
        return translated(self.path)


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """sqlite3's errors inside as the read-model databases' own, naming the file."""
    try:
        yield
    except (sqlite3.Error, OverflowError) as error:
        raise translate(error, f"SQLite {path}") from error


# Result codes (without their extended part) of a file that cannot be used at all.
_UNAVAILABLE = frozenset(
    {"SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_FULL"}
)


def translate(error: sqlite3.Error | OverflowError, where: str) -> ReadModelDatabaseError:
    """sqlite3's error (or its OverflowError for an integer past 64 bits) as the
    read-model databases' own."""
    message = f"{where}: {first_line(error)}"
    code = (getattr(error, "sqlite_errorname", None) or "").split("_")[:2]
    result = "_".join(code)
    kind: type[ReadModelDatabaseError]
    if isinstance(error, OverflowError | sqlite3.DataError):
        kind = DatabaseValueError
    elif result in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        kind = DatabaseBusy
    elif result in _UNAVAILABLE or result == "SQLITE_READONLY":
        kind = DatabaseUnavailable
    elif isinstance(error, sqlite3.IntegrityError):
        kind = DatabaseIntegrityError
    elif str(error).startswith("no such table"):
        kind = MissingTable
    elif str(error).startswith("Error binding parameter"):
        kind = DatabaseValueError
    elif isinstance(error, sqlite3.OperationalError | sqlite3.ProgrammingError):
        kind = DatabaseProgrammingError
    else:
        kind = ReadModelDatabaseError
    return kind(message)


class SqliteLender(DatabaseLender):
    """A connection of its own to the SQLite file for each loan."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        """Nothing to start: each loan opens the file."""

    @contextmanager
    def lend(self) -> Iterator[Database]:
        db = SqliteDatabase(self.path)
        try:
            yield db
        finally:
            db.close()

    def close(self) -> None:
        """Nothing stays open between loans."""
