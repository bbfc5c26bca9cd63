"""The port every read-model database adapter implements, and what is shared by all of them.

Statements are written once with ``?`` placeholders and ``{type}`` fields for the column
types; each backend's dialect fills them in, and each backend converts the values it
cannot store as they are (``Database.param``). ``{in_keys}`` after a column is ``IN`` the
keys of a JSON array bound as one parameter (``for_keys``), spelt by each dialect.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from itertools import repeat
from operator import itemgetter
from typing import Any, ClassVar

Row = dict[str, Any]
# A piece of a query's result: the column names, and records holding values in that order.
Chunk = tuple[list[str], list[tuple[Any, ...]]]

# Bound parameters per multi-row INSERT: well under every database's limit.
MAX_PARAMS = 20_000

# Rows per fetch when a whole table is read (Database.stream).
STREAM_ROWS = 5_000
# Rows per Arrow record batch (Database.stream_batches): two of DuckDB's vectors. A replay
# checksum's peak grows with it: at 4,096 rows it is the chunks' (12 MiB more at 10,000,
# 60 MiB more at 50,000, for an eighth less CPU).
BATCH_ROWS = 4_096


def _json_default(value: object) -> str:
    if isinstance(value, Decimal | datetime):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    """JSON text with Decimals kept exact (as strings)."""
    return json.dumps(value, default=_json_default, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Dialect:
    """Column types, key-list membership and placeholder style of one database."""

    types: Mapping[str, str]
    # ``IN`` the strings of a JSON array bound as one ``?`` (the ``{in_keys}`` field).
    in_keys: str
    placeholder: str = "?"
    # An SQL expression writing a row's columns as the JSON text `AsyncDatabase.json_rows`
    # gives for them, for a read model that stores that text beside the row (a history
    # page then joins stored texts); None where pages are written by the server instead.
    json_text: Callable[[Mapping[str, JsonFormat]], str] | None = None
    _fields: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fields", {**self.types, "in_keys": self.in_keys})

    def sql(self, statement: str) -> str:
        """Fill in the column types, ``{in_keys}`` and this database's placeholder."""
        filled = statement.format_map(self._fields)
        return filled.replace("?", self.placeholder) if self.placeholder != "?" else filled


COMMON_TYPES = {
    "text": "TEXT",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "bool": "BOOLEAN",
}


def rows_of(description: Any, records: Sequence[Sequence[Any]]) -> list[Row]:
    """A DB-API cursor's records as dicts keyed by column name."""
    if description is None:
        return []
    names = [column[0] for column in description]
    return [dict(zip(names, record, strict=True)) for record in records]


class Database(ABC):
    """A connection to one read-model database, used by one thread."""

    dialect: ClassVar[Dialect]

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""

    @abstractmethod
    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders, ``{type}`` fields); rows if it returns any.

        Write statements return rows only with RETURNING (without it DuckDB returns a
        count row, the others none: do not rely on either)."""

    @abstractmethod
    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""

    def stream_chunks(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Chunk]:
        """The rows of one query, fetched ``size`` at a time as records (no dict per row: a
        checksum reads every row of a table), so that reading a whole table (millions of
        rows) holds one chunk in memory, not the table. Run nothing else on this database
        until the rows are read: they share its connection."""
        rows = self.execute(statement)
        if rows:
            yield list(rows[0]), [tuple(row.values()) for row in rows]

    def stream_batches(
        self, statement: str, size: int = BATCH_ROWS
    ) -> Generator[Any, None, None] | None:
        """The rows of one query as Arrow record batches of ``size`` rows where the driver
        makes them in C (DuckDB), else None (read ``stream_chunks``). As ``stream_chunks``:
        run nothing else on this database until they are read or the generator closed."""
        return None

    def stream(self, statement: str, size: int = STREAM_ROWS) -> Iterator[Row]:
        """The rows of ``stream_chunks``, one dict each."""
        for names, records in self.stream_chunks(statement, size):
            for record in records:
                yield dict(zip(names, record, strict=True))

    # The types whose values ``upsert`` and ``append`` pass to ``insert_rows`` without a call
    # of ``param`` per value: ones ``param`` gives back as they are, or (DuckDB's aware
    # timestamps) ones its ``insert_rows`` converts as ``param`` would.
    bound_as_is: ClassVar[frozenset[type]] = frozenset({str, int, bool, type(None)})

    def param(self, value: Any) -> Any:
        """``value`` as this database binds it: lists and dicts as JSON text by default."""
        if isinstance(value, dict | list):
            return to_json(value)
        return value

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        values: Sequence[Sequence[Any]],
        on_conflict: str,
    ) -> None:
        """Insert rows given column by column (``values[i]`` holds ``columns[i]`` of every
        row, converted by ``param`` unless its type is in ``bound_as_is``) with one ``ON
        CONFLICT`` clause, in multi-row INSERTs of at most ``MAX_PARAMS`` parameters."""
        records = list(zip(*values, strict=True))
        row_placeholder = "(" + ", ".join("?" for _ in columns) + ")"
        per_statement = max(1, MAX_PARAMS // len(columns))
        for start in range(0, len(records), per_statement):
            chunk = records[start : start + per_statement]
            statement = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                + ", ".join(row_placeholder for _ in chunk)
                + f" {on_conflict}"
            )
            self.execute(statement, [value for record in chunk for value in record])


def upsert(
    db: Database,
    table: str,
    key_columns: Sequence[str],
    rows: Mapping[tuple[Any, ...], Mapping[str, Any]],
    columns: Collection[str] | None = None,
) -> None:
    """Insert or fill rows: a non-null value wins, a null never clears a stored value.
    With ``columns``, every row is written with exactly those (None where it has no
    value: the same rows, since a None never clears one), in one statement.

    Fact columns cannot be NOT NULL: PostgreSQL checks the proposed row (only the columns
    one batch knows) before it finds the conflict that turns the insert into an update.

    Keys must be unique within ``rows`` (fold first): one statement may not touch a row twice.
    """
    for group, values in _columns_by_group(db, rows, columns).items():
        if group:
            assignments = ", ".join(
                f"{column} = COALESCE(excluded.{column}, {table}.{column})" for column in group
            )
            conflict = f"DO UPDATE SET {assignments}"
        else:
            conflict = "DO NOTHING"
        db.insert_rows(
            table,
            [*key_columns, *group],
            values,
            f"ON CONFLICT ({', '.join(key_columns)}) {conflict}",
        )


def append(
    db: Database,
    table: str,
    key_columns: Sequence[str],
    rows: Mapping[tuple[Any, ...], Mapping[str, Any]],
    columns: Collection[str] | None = None,
) -> None:
    """Insert rows whose keys the table cannot hold yet (new by construction): no
    conflict check, so the table needs no primary key. ``columns`` as in ``upsert``."""
    for group, values in _columns_by_group(db, rows, columns).items():
        db.insert_rows(table, [*key_columns, *group], values, "")


def _columns_by_group(
    db: Database,
    rows: Mapping[tuple[Any, ...], Mapping[str, Any]],
    columns: Collection[str] | None = None,
) -> dict[tuple[str, ...], list[list[Any]]]:
    """The rows grouped by the columns they have (one statement per group; all of them in
    one group of ``columns`` if given), each group column by column: the key's columns,
    then each value column (``db.param``). Every backend takes a batch by columns (arrays,
    Arrow), so rows are never built as records."""
    if columns is not None:
        names = tuple(sorted(columns))
        return {names: _columns(db, rows, names)} if rows else {}
    groups: dict[tuple[str, ...], dict[tuple[Any, ...], Mapping[str, Any]]] = {}
    names = ()
    for key, values in rows.items():
        if tuple(values) != names:
            names = tuple(sorted(values))
        groups.setdefault(names, {})[key] = values
    return {names: _columns(db, members, names) for names, members in groups.items()}


_DICT_GET: Callable[[Any, str], Any] = dict.get


def _columns(
    db: Database, rows: Mapping[tuple[Any, ...], Mapping[str, Any]], names: Sequence[str]
) -> list[list[Any]]:
    """The rows' keys and ``names``, column by column (None where a row has no value)."""
    # A key column by itemgetter mapped in C: ``zip(*rows)`` passes every key as an
    # argument of one call (a tenth of the time at 100,000 rows).
    width = len(next(iter(rows)))
    group = [list(map(itemgetter(index), rows)) for index in range(width)]
    for name in names:
        try:
            # dict.get mapped in C: half the time of a comprehension (the rows are folded
            # dicts; another mapping takes the comprehension).
            column = list(map(_DICT_GET, rows.values(), repeat(name)))
        except TypeError:
            column = [values.get(name) for values in rows.values()]
        group.append(_bound(db, column))
    return group


def _bound(db: Database, values: list[Any]) -> list[Any]:
    """One column's values as ``db`` binds them; a column of types bound as they are (most
    of them) is not walked value by value in Python."""
    as_is = db.bound_as_is
    if as_is.issuperset(map(type, values)):
        return values
    param = db.param
    return [value if type(value) in as_is else param(value) for value in values]


def for_keys(db: Database, statement: str, keys: Sequence[str]) -> None:
    """Run ``statement`` once for all of ``keys`` (its ``{in_keys}`` field, bound as JSON
    text), not once per key: a statement per row a batch touched cost more client CPU than
    its upserts."""
    if keys:
        db.execute(statement, [to_json(keys)])


class DatabaseLender(ABC):
    """Lends a read-model database to one request at a time, for a server whose many
    threads each need their own connection (a pool on PostgreSQL)."""

    @abstractmethod
    def open(self) -> None:
        """Start lending (a pool starts connecting in the background)."""

    @abstractmethod
    def lend(self) -> AbstractContextManager[Database]:
        """A database for the length of one request, given back on leaving."""

    def reachable(self) -> None:
        """Return if the database can be connected to now, else raise DatabaseUnavailable
        saying why, with a connection of its own (a pool's retries wait and back off).
        An embedded file is opened at each loan: nothing to try before."""
        return

    @abstractmethod
    def close(self) -> None: ...


class JsonFormat(Enum):
    """How a column's values are written in an answer's JSON (as pydantic writes them)."""

    PLAIN = "plain"  # text, integers and nulls as they are
    TIME = "time"  # RFC 3339 in the session's zone, `Z` for UTC, microseconds only if any
    DECIMAL = "decimal"  # a string, exact


# The select list of a query whose rows `AsyncDatabase.json_rows` writes as JSON.
COLUMNS = "{columns}"


@dataclass(frozen=True)
class JsonQuery:
    """A query for `AsyncDatabase.json_rows`: a SELECT whose select list is written
    ``COLUMNS``, ordered by ``order`` (its ORDER BY clause, without the words), each row
    written as one JSON object of ``columns`` in their order; ``keys`` are columns also
    given as loaded values (a page's cursor). ``stored`` names a column holding each row's
    JSON object of ``columns`` already (`Dialect.json_text`, written with the row), which a
    backend writing JSON itself selects instead of writing it; None where there is none."""

    statement: str
    params: Sequence[Any]
    columns: Mapping[str, JsonFormat]
    order: str
    keys: tuple[str, ...]
    stored: str | None = None


@dataclass(frozen=True)
class JsonPage:
    """A `JsonQuery`'s rows in one piece: their JSON objects joined by commas (the inside
    of a JSON array), how many there are and the last row's ``keys`` (None when none)."""

    items: bytes
    count: int
    last: tuple[Any, ...] | None

    @classmethod
    def of(cls, rows: Sequence[tuple[bytes, tuple[Any, ...]]]) -> JsonPage:
        """The page of `AsyncDatabase.json_rows`' rows."""
        return cls(b",".join(row for row, _ in rows), len(rows), rows[-1][1] if rows else None)


class AsyncDatabase(ABC):
    """A read-model database lent to one request of a server's event loop: queries only,
    awaited, so that a request never leaves the loop for a thread."""

    @abstractmethod
    async def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one query (``?`` placeholders, ``{type}`` fields); its rows."""

    async def json_rows(self, query: JsonQuery) -> list[tuple[bytes, tuple[Any, ...]]]:
        """Each row of ``query`` in its order: the bytes pydantic's serialiser gives for the
        row's ``columns``, and the row's ``keys``. Here it is that serialiser; a backend may
        write the JSON itself."""
        from pydantic_core import to_json

        selected = [*query.columns, *(key for key in query.keys if key not in query.columns)]
        rows = await self.execute(
            query.statement.replace(COLUMNS, ", ".join(selected)), query.params
        )
        return [
            (
                to_json({name: row[name] for name in query.columns}),
                tuple(row[key] for key in query.keys),
            )
            for row in rows
        ]

    async def json_pages(self, queries: Sequence[JsonQuery]) -> list[JsonPage]:
        """Each of ``queries`` as one page, in their order. Here one query after the other;
        a backend may answer them all with one statement."""
        return [JsonPage.of(await self.json_rows(query)) for query in queries]

    @abstractmethod
    def param(self, value: Any) -> Any:
        """``value`` as this database binds it (as ``Database.param``)."""


class AsyncDatabaseLender(ABC):
    """Lends a read-model database to one request at a time on an event loop (an
    asynchronous pool on PostgreSQL)."""

    @abstractmethod
    async def open(self) -> None:
        """Start lending, on the loop that will borrow."""

    @abstractmethod
    def lend(self) -> AbstractAsyncContextManager[AsyncDatabase]:
        """A database for the length of one request, given back on leaving."""

    @abstractmethod
    async def close(self) -> None: ...
