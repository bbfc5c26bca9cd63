"""Order-independent checksums of read-model tables, the same for PostgreSQL, SQLite and
DuckDB rows: two tables with equal checksums hold the same rows (Guarantee 7).

Each row becomes one canonical text (columns by name, values in one spelling whatever the
database returned: a Decimal without trailing zeros, a timestamp in UTC, JSON with sorted
keys), hashed with BLAKE2b; the table's checksum is the row count and the sum of the row
hashes modulo 2**128. A sum, unlike an XOR, does not cancel a row that appears twice.

``canonical_row`` and ``checksum_rows`` say it row by row; ``checksum_chunks`` (what a
table's checksum is taken with) computes the same a column of a chunk of rows at a time,
with the same spellings, so that most of the per-value work runs in C (``map``);
``replay/checksum_arrow.py`` computes it from Arrow record batches where the database gives
them (DuckDB), a column spelled by Arrow, and ``replay/checksum_postgres.py`` from row texts
PostgreSQL spells itself.

A table is also fingerprinted where its database can hash its rows itself faster than it is
checksummed (replay's homes give the statement: DuckDB's; PostgreSQL spells its rows for
the checksum with less work than its MD5 of them took): the row count and the sum of an
MD5 per row, of the row as the database spells it, and the table's column names and types
(a spelling may not show the type). Two tables of one database with equal fingerprints
hold the same rows, so they have the same checksum: the rebuild's compare checksums the
rebuilt tables and takes a live table's checksum as the rebuilt one's when their
fingerprints are equal (and checksums it itself otherwise, or when a fingerprint fails: the
spelling above is the definition).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from json.encoder import encode_basestring_ascii
from operator import attrgetter, methodcaller
from typing import Any

from projections.databases.errors import ReadModelDatabaseError
from projections.databases.port import Chunk, Database, to_json
from projections.read_model import ReadModel

MODULUS = 2**128


def _decimal(value: Decimal) -> str:
    # NUMERIC(14,3) gives 20.000 where SQLite kept "20": the same number.
    return "0" if value.is_zero() else format(value.normalize(), "f")


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        # A naive timestamp is a UTC one DuckDB stored (see projections.databases.duckdb):
        # spelled as its aware twin would be, without making one.
        return value.isoformat(timespec="microseconds") + "+00:00"
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# The exact types the drivers return, spelled without walking the isinstance chain below:
# a checksum spells every value of every row, so this is most of a rebuild's compare.
_SPELLING: dict[type, Callable[[Any], str]] = {
    type(None): lambda value: "null",
    bool: lambda value: "true" if value else "false",
    int: str,
    # What json.dumps returns for a str, without its per-call set-up.
    str: encode_basestring_ascii,
    Decimal: _decimal,
    datetime: _timestamp,
}


def canonical_value(value: Any) -> str:
    """One spelling per value, whichever database (and driver) returned it."""
    spell = _SPELLING.get(type(value))
    if spell is not None:
        return spell(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds():.6f}s"
    if isinstance(value, dict | list):
        # As the read models store JSON (Decimals as their text), keys sorted.
        return to_json(value)
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(str(value))


def canonical_row(row: Mapping[str, Any]) -> str:
    """The row as text: ``name=value`` by column name, so column order does not matter."""
    return "\x1f".join(f"{column}={canonical_value(row[column])}" for column in sorted(row))


def row_hash(row: Mapping[str, Any]) -> int:
    digest = hashlib.blake2b(canonical_row(row).encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class TableChecksum:
    """How many rows a table holds and the sum of their hashes."""

    table: str
    rows: int
    digest: int
    # The database's own hash of the rows (see the module docstring), when it has one.
    fingerprint: str | None = field(default=None, compare=False)

    @property
    def hex(self) -> str:
        return f"{self.digest:032x}"

    def matches(self, other: TableChecksum) -> bool:
        return self.rows == other.rows and self.digest == other.digest


def checksum_rows(table: str, rows: Iterable[Mapping[str, Any]]) -> TableChecksum:
    count = 0
    total = 0
    blake2b, spell = hashlib.blake2b, canonical_value
    columns: list[str] = []
    known: set[str] = set()
    for row in rows:
        if row.keys() != known:
            known, columns = set(row), sorted(row)
        # canonical_row and row_hash, with the column order sorted once per table.
        text = "\x1f".join(f"{column}={spell(row[column])}" for column in columns)
        digest = blake2b(text.encode(), digest_size=16).digest()
        count += 1
        total = (total + int.from_bytes(digest, "big")) % MODULUS
    return TableChecksum(table, count, total)


_naive_isoformat = methodcaller("isoformat", timespec="microseconds")
_tzinfo = attrgetter("tzinfo")
_digest = methodcaller("digest")
_hasher = partial(hashlib.blake2b, digest_size=16)


def spelled(column: Sequence[Any]) -> Iterable[str]:
    """canonical_value of each value of one column: one spelling for the whole column when
    its values are all of one type (as a column mostly is), or of one type and NULL."""
    kinds = set(map(type, column))
    if len(kinds) == 2 and type(None) in kinds:
        values = [value for value in column if value is not None]
        spelled = iter(_spelled_alike(values, (kinds - {type(None)}).pop()))
        return ["null" if value is None else next(spelled) for value in column]
    if len(kinds) != 1:
        return map(canonical_value, column)
    return _spelled_alike(column, kinds.pop())


def _spelled_alike(column: Sequence[Any], kind: type) -> Iterable[str]:
    """canonical_value of each value of a column whose values are all of type ``kind``."""
    if kind is datetime and set(map(_tzinfo, column)) == {None}:
        # _timestamp of a naive timestamp, without a Python call per value.
        return map("{}+00:00".format, map(_naive_isoformat, column))
    return map(_SPELLING.get(kind, canonical_value), column)


def row_digests(texts: Iterable[bytes]) -> Iterable[int]:
    """Each row text's BLAKE2b digest as a number (row_hash), made in C."""
    return map(int.from_bytes, map(_digest, map(_hasher, texts)))


def checksum_chunks(table: str, chunks: Iterable[Chunk]) -> TableChecksum:
    """checksum_rows of the rows of ``chunks`` (column names and records), a chunk at a
    time: each column spelled at once, each row's text made by one ``str.format``."""
    count = 0
    total = 0
    for names, records in chunks:
        if not records:
            continue
        order = sorted(range(len(names)), key=names.__getitem__)
        # "name={}" per column, sorted by name: canonical_row's text (braces escaped).
        template = "\x1f".join(
            names[index].replace("{", "{{").replace("}", "}}") + "={}" for index in order
        )
        columns = list(zip(*records, strict=True))
        texts = map(template.format, *(spelled(columns[index]) for index in order))
        total += sum(row_digests(map(str.encode, texts)))
        count += len(records)
    return TableChecksum(table, count, total % MODULUS)


# The fingerprint of a table (by name) in a database; None where it has none.
Fingerprinting = Callable[[Database, str], str | None]


def table_checksum(
    db: Database,
    table: str,
    fingerprinting: Fingerprinting | None = None,
    like: TableChecksum | None = None,
) -> TableChecksum:
    """The checksum of every row of ``table`` as ``db`` returns it (from Arrow record
    batches where it gives them), with its fingerprint (``fingerprinting``); ``like``'s
    checksum if ``like`` is the same table of the same database elsewhere and the
    fingerprints are equal."""
    fingerprint = fingerprinting(db, table) if fingerprinting is not None else None
    same = like is not None and like.table == table and like.fingerprint == fingerprint
    if fingerprint is not None and like is not None and same:
        return like
    statement = f"SELECT * FROM {table}"
    checksum = None
    batches = db.stream_batches(statement)
    if batches is not None:
        from replay.checksum_arrow import checksum_batches  # pyarrow only where it is used

        with closing(batches):  # its result read or dropped before the next statement
            checksum = checksum_batches(table, batches)
    if checksum is None:
        from replay.checksum_postgres import checksum_spelled  # orjson only where it is used

        checksum = checksum_spelled(db, table)
    if checksum is None:
        checksum = checksum_chunks(table, db.stream_chunks(statement))
    return TableChecksum(table, checksum.rows, checksum.digest, fingerprint)


def fingerprint_of(db: Database, statement: str) -> str | None:
    """The fingerprint ``statement`` (columns ``n``, the row count, ``h``, the rows' hashes
    summed, NULL where the table has none, and ``columns``, the table's column names and
    types) gives; None if it fails or has none: the table is then checksummed row by row."""
    try:
        row = db.execute(statement)[0]
    except ReadModelDatabaseError:
        return None
    return fingerprint_text(row)


def fingerprint_text(row: Mapping[str, Any]) -> str | None:
    """The fingerprint a fingerprint statement's row says (see fingerprint_of)."""
    if row["h"] is None:
        return None
    return f"{row['n']}:{row['h']}:{row['columns']}"


def model_checksums(
    model: ReadModel,
    fingerprinting: Fingerprinting | None = None,
    like: Mapping[str, TableChecksum] | None = None,
) -> dict[str, TableChecksum]:
    """A checksum per table of the read model (its tracking position is not content); see
    table_checksum."""
    return {
        table: table_checksum(model.db, table, fingerprinting, (like or {}).get(table))
        for table in model.tables
    }


def differing_tables(
    live: Mapping[str, TableChecksum], rebuilt: Mapping[str, TableChecksum]
) -> list[str]:
    """The tables whose checksums differ (or that only one side has)."""
    names = sorted(set(live) | set(rebuilt))
    return [
        name
        for name in names
        if name not in live or name not in rebuilt or not live[name].matches(rebuilt[name])
    ]
