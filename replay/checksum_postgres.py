"""``checksum_chunks`` of a PostgreSQL table with each row's canonical text spelled by
PostgreSQL itself, so that Python only hashes one text per row.

A rebuild checksums every rebuilt table; taking a PostgreSQL table's rows as Python values
(a ``datetime``, a ``Decimal``, a JSON document per value) and spelling them again was most
of the views' compare. Here the statement spells each column as ``canonical_value`` does,
only for the types and values where PostgreSQL's text is provably that spelling (integers,
booleans, numerics of up to 28 digits without their trailing zeros, timestamps of years
1-9999 in UTC with six fraction digits, text of ASCII but DEL, which ``to_json`` escapes as
JSON does); a row holding any other value (non-ASCII text, a NaN, a year outside 1-9999) is
read again as Python values and spelled by ``checksum_chunks``, and a table with a column of
another type is read as chunks. A JSON document comes as its text and is written again
here: by orjson, keys sorted, where orjson writes what ``json.dumps`` writes (no float, no
integer orjson might read as one, ASCII but DEL), else by ``json`` as before. The checksum
is the same either way (a property test says so; the golden checksums are unchanged).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from projections.databases.postgres import PostgresDatabase
from replay.checksum import MODULUS, TableChecksum, canonical_value, checksum_chunks, row_digests

# canonical_value's timestamp: RFC 3339 in UTC with microseconds, `+00:00`.
_TIME = '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\''
# The years Python's datetime holds (psycopg refuses the others; a timestamptz at the year's
# edge, read in a session time zone other than UTC, is spelled here where psycopg refused it).
_TIMESTAMPTZ_YEARS = "{c} >= '0001-01-01 00:00:00+00' AND {c} < '10000-01-01 00:00:00+00'"
_TIMESTAMP_YEARS = "{c} >= '0001-01-01 00:00:00' AND {c} < '10000-01-01 00:00:00'"
# The most digits canonical_value's Decimal (context precision 28) spells exactly.
_DECIMAL_DIGITS = 28

# By type: the expression spelling column {c} as canonical_value does, and the condition
# under which it does (None: always).
_SPELLED: dict[str, tuple[str, str | None]] = {
    "smallint": ("{c}::text", None),
    "integer": ("{c}::text", None),
    "bigint": ("{c}::text", None),
    "boolean": ("CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END", None),
    # json.dumps of a str with ensure_ascii: to_json escapes ", \ and the control
    # characters as it does; other characters it would escape (DEL, non-ASCII) are not
    # PostgreSQL's to spell.
    "text": ("to_json({c})::text", "{c} ~ '^[\\x01-\\x7e]*$'"),
    "character varying": ("to_json({c}::text)::text", "{c} ~ '^[\\x01-\\x7e]*$'"),
    # Without trailing zeros; NaN and the infinities (NaN sorts above Infinity) in Python.
    "numeric": ("trim_scale({c})::text", "{c} > '-Infinity' AND {c} < 'Infinity'"),
    "timestamp with time zone": (f"to_char({{c}} AT TIME ZONE 'UTC', {_TIME})", _TIMESTAMPTZ_YEARS),
    "timestamp without time zone": (f"to_char({{c}}, {_TIME})", _TIMESTAMP_YEARS),
}
_JSON = "jsonb"
# The types whose condition (ASCII but DEL) is seen in their spelling, not asked for.
_TEXT = frozenset({"text", "character varying"})
_EMPTY = "''"

# In jsonb's text (", " and ": " between items, numbers as numeric_out writes them) a number
# follows a space or the "[" of its array, which gets a space here: a float has a fraction,
# and orjson reads an integer past 64 bits as a float. A string may match too: it is then
# only written by json. (One regular expression with both starts took 25 us a document.)
_FLOAT_OR_WIDE = re.compile(rb" -?[0-9](?:[0-9]*[.eE]|[0-9]{18})")


def json_spelled(text: bytes | None) -> bytes:
    """canonical_value of the document jsonb's ``text`` holds (what psycopg's json.loads
    makes of it), as UTF-8."""
    if text is None:
        return b"null"
    if text[:1] in (b"{", b"[") and _FLOAT_OR_WIDE.search(text.replace(b"[", b"[ ")) is None:
        try:
            spelled = orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # nested past its limits
            spelled = b"\x7f"
        # json.dumps escapes DEL and every non-ASCII character; orjson writes them as they
        # are (it escapes the control characters as json does).
        if spelled.isascii() and b"\x7f" not in spelled:
            return spelled
    return canonical_value(json.loads(text)).encode()


def checksum_spelled(db: Any, table: str) -> TableChecksum | None:
    """checksum_chunks of ``table``'s rows with PostgreSQL spelling them; None where ``db``
    is not PostgreSQL or a column has a type not spelled here (read it as chunks)."""
    if not isinstance(db, PostgresDatabase):
        return None
    columns = db.execute(
        "SELECT attname AS name, atttypid::regtype::text AS kind, atttypmod AS typmod"
        " FROM pg_attribute WHERE attrelid = CAST(? AS regclass) AND attnum > 0"
        " AND NOT attisdropped",
        [table],
    )
    if not columns or db.execute("SHOW server_encoding")[0]["server_encoding"] != "UTF8":
        return None
    statement = _Statement.of([(c["name"], c["kind"], c["typmod"]) for c in columns])
    if statement is None:
        return None
    count = total = 0
    others = False  # rows PostgreSQL does not spell, read again below
    for _, chunk in db.stream_binary(f"SELECT {statement.select} FROM {table}"):
        records = chunk
        parts = list(zip(*records, strict=True))
        if not all(_plain(parts[index]) for index in statement.spelled):
            others = True
            records = [record for record in chunk if _plain_row(record, statement.spelled)]
            if not records:
                continue
            parts = list(zip(*records, strict=True))
        for index in statement.documents:
            parts[index] = tuple(map(json_spelled, parts[index]))
        texts = parts[0] if len(parts) == 1 else map(b"".join, zip(*parts, strict=True))
        total += sum(row_digests(texts))
        count += len(records)
    if others:
        where = f"WHERE NOT {statement.plain}"
        rest = checksum_chunks(table, db.stream_binary(f"SELECT * FROM {table} {where}"))
        count, total = count + rest.rows, total + rest.digest
    return TableChecksum(table, count, total % MODULUS)


def _plain(texts: Sequence[bytes | None]) -> bool:
    """Whether PostgreSQL spelled every row of a part: not NULL (the first part is where a
    value is not its to spell), ASCII without DEL (text ``to_json`` writes otherwise than
    ``json.dumps``: the other types are spelled in ASCII)."""
    if None in texts:
        return False
    joined = b"".join(texts)  # type: ignore[arg-type]  # no None: checked above
    return joined.isascii() and b"\x7f" not in joined


def _plain_row(record: Sequence[bytes | None], spelled: Sequence[int]) -> bool:
    return _plain([record[index] for index in spelled])


@dataclass(frozen=True)
class _Statement:
    """The select list giving each row's canonical text in parts (UTF-8): text spelled by
    PostgreSQL (the places ``spelled``), each JSON document's text between them (the places
    ``documents``); ``plain``, the condition under which PostgreSQL's spelling is
    canonical_value's for a row. The first part is NULL where a value's condition does not
    hold (a NaN, a year out of range); a text value's (ASCII but DEL) is seen in its part."""

    select: str
    plain: str
    spelled: list[int]
    documents: list[int]

    @staticmethod
    def of(columns: Sequence[tuple[str, str, int]]) -> _Statement | None:
        """The statement for a table's columns (name, type, type modifier); None if a column
        has a type not spelled here."""
        pieces: list[list[str]] = [[]]
        documents: list[int] = []
        checked: list[str] = []  # in the statement
        seen: list[str] = []  # in the parts, by _plain
        for place, (name, kind, typmod) in enumerate(sorted(columns)):
            column = '"' + name.replace('"', '""') + '"'
            label = ("\x1f" if place else "") + name + "="
            if not label.isascii() or "\x7f" in label:
                return None  # _plain would take every row for one with a non-ASCII value
            pieces[-1].append("'" + label.replace("'", "''") + "'")
            if kind == _JSON:
                documents.append(len(pieces))
                pieces.append([f"convert_to({column}::text, 'UTF8')"])
                pieces.append([])
                continue
            if kind not in _SPELLED or (kind == "numeric" and not _exact(typmod)):
                return None
            expression, condition = _SPELLED[kind]
            pieces[-1].append(f"coalesce({expression.format(c=column)}, 'null')")
            if condition is not None:
                condition = f"({column} IS NULL OR {condition.format(c=column)})"
                (seen if kind in _TEXT else checked).append(condition)
        select = []
        for index, piece in enumerate(pieces):
            if index in documents:
                select.append(piece[0])
                continue
            text = f"convert_to({' || '.join(piece) or _EMPTY}, 'UTF8')"
            if index == 0 and checked:
                text = f"CASE WHEN {' AND '.join(checked)} THEN {text} END"
            select.append(text)
        spelled = [index for index in range(len(pieces)) if index not in documents]
        plain = f"({' AND '.join([*checked, *seen]) or 'true'})"
        return _Statement(", ".join(select), plain, spelled, documents)


def _exact(typmod: int) -> bool:
    """Whether a numeric column of this type modifier holds at most 28 digits (-1: any)."""
    return typmod >= 4 and ((typmod - 4) >> 16) & 0xFFFF <= _DECIMAL_DIGITS
