"""Many `JsonQuery` pages in one PostgreSQL statement (`AsyncDatabase.json_pages`): the
queries' parameters go in as one JSON text, an object per query (`json_to_recordset`), and
each query runs as a LATERAL subquery over its row, which also joins its page's JSON objects
and picks its last row's keys; so PostgreSQL parses, plans and starts one statement, and the
client reads one row, per batch instead of one statement and a row per item per page.

One JSON text (orjson, in C) rather than an array per parameter: psycopg writes arrays in
Python, element by element, which cost the worker as much as the rest of the statement's
round trip (five arrays of nine pages: about 120 us of CPU, the JSON text a tenth of that).

Queries of the same shape (statement, columns, order, keys and parameter types) share one
LATERAL; a batch of several shapes is their UNION ALL, written once per set of shapes."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from projections.databases.port import JsonFormat, JsonPage, JsonQuery
from projections.databases.postgres import POSTGRES
from projections.databases.postgres_json import json_select

# A parameter's column type by its Python type (as psycopg binds the value alone); a value
# of any other type is not batched. No float: JSON has no NaN nor infinities (orjson writes
# them as null).
_COLUMN_TYPES: dict[type, str] = {
    str: "text",
    bool: "boolean",
    int: "bigint",
    Decimal: "numeric",
}

Shape = tuple[str, tuple[tuple[str, str], ...], str, tuple[str, ...], tuple[str, ...], str | None]


class NotBatched(TypeError):
    """A query that one statement for many cannot hold (a parameter of another type)."""


def _column_type(value: Any) -> str:
    if isinstance(value, datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    found = _COLUMN_TYPES.get(type(value))
    if found is None:
        raise NotBatched(f"no column type for a parameter of type {type(value).__name__}")
    return found


def _exact(value: Any) -> str:
    """orjson's fallback: a Decimal as its exact text, which PostgreSQL reads as numeric."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"no JSON for {type(value).__name__}")


# Each columns mapping's formats, by identity: a page's mapping is one of a few constants
# (the page model's), and writing its two dozen pairs again was a tenth of a batch's Python.
# A mapping must therefore not change once used in a query (none does: they are module
# constants); one changed in place would keep its old formats here.
_FORMATS: dict[int, tuple[Mapping[str, JsonFormat], tuple[tuple[str, str], ...]]] = {}


def _formats(columns: Mapping[str, JsonFormat]) -> tuple[tuple[str, str], ...]:
    known = _FORMATS.get(id(columns))
    if known is not None and known[0] is columns:  # held, so its id is not another's
        return known[1]
    formats = tuple((name, kind.value) for name, kind in columns.items())
    if len(_FORMATS) >= 64:
        _FORMATS.clear()
    _FORMATS[id(columns)] = (columns, formats)
    return formats


def shape(query: JsonQuery) -> Shape:
    """What queries must share to run as one LATERAL."""
    formats = _formats(query.columns)
    types = tuple(_column_type(value) for value in query.params)
    return (query.statement, formats, query.order, query.keys, types, query.stored)


@functools.lru_cache(maxsize=64)
def pages_statement(shapes: tuple[Shape, ...]) -> bytes:
    """The statement for queries of ``shapes`` (sorted, so a set is written one way), in
    libpq's own placeholders (it runs prepared by name, postgres_prepared.py): ``$1``, ``$2``
    ... are, shape after shape, the JSON text of that shape's queries (`batch`). The order's
    columns must be among the keys."""
    parts = []
    for statement, formats, order, keys, types, stored in shapes:
        pieces = statement.split("?")
        if len(pieces) != len(types) + 1:
            raise NotBatched("a query whose placeholders are not its parameters")
        # Each placeholder becomes its column of the query's row of parameters.
        lateral = pieces[0] + "".join(
            f"p.a{number}{piece}" for number, piece in enumerate(pieces[1:], start=1)
        )
        rows = json_select(
            lateral,
            tuple(name for name, _ in formats),
            tuple(kind for _, kind in formats),
            keys,
            stored,
        )
        # Ordered aggregates, so the page keeps the query's order (a subquery's is not kept).
        lasts = "".join(
            f", (array_agg(d.{key} ORDER BY {order}))[count(*)] AS k{number}"
            for number, key in enumerate(keys)
        )
        columns = ", ".join(
            ["i int", *(f"a{number} {kind}" for number, kind in enumerate(types, start=1))]
        )
        parts.append(
            f"SELECT p.i, j.* FROM json_to_recordset(?::json) AS p({columns}) CROSS JOIN LATERAL"
            f" (SELECT string_agg(d.doc, ',' ORDER BY {order}) AS items, count(*) AS n{lasts}"
            f" FROM ({rows}) d) j"
        )
    pieces = POSTGRES.sql(" UNION ALL ".join(parts)).split(POSTGRES.placeholder)
    if len(pieces) != len(shapes) + 1:
        raise NotBatched("a query with a placeholder of its own in its text")
    numbered = pieces[0] + "".join(
        f"${number}{piece}" for number, piece in enumerate(pieces[1:], start=1)
    )
    return numbered.encode()


def batch(queries: Sequence[JsonQuery]) -> tuple[tuple[Shape, ...], list[Any]]:
    """The shapes of ``queries`` (sorted) and the batch statement's parameters: for each
    shape, its queries as one JSON text, an object per query of its index (``i``) and its
    parameters (``a1``, ``a2``, ...)."""
    groups: dict[Shape, list[int]] = {}
    for index, query in enumerate(queries):
        groups.setdefault(shape(query), []).append(index)
    shapes = tuple(sorted(groups, key=lambda each: (*each[:5], each[5] or "")))
    params: list[Any] = []
    for each in shapes:
        names = _names(len(each[4]))
        if "timestamptz" in each[4]:
            rows = [
                dict(zip(names, (index, *_utc(queries[index].params)), strict=True))
                for index in groups[each]
            ]
        else:
            rows = [
                dict(zip(names, (index, *queries[index].params), strict=True))
                for index in groups[each]
            ]
        try:
            params.append(orjson.dumps(rows, default=_exact).decode())
        except orjson.JSONEncodeError as error:  # a text that is no Unicode, an int too large
            raise NotBatched(str(error)) from None
    return shapes, params


def _utc(params: Sequence[Any]) -> list[Any]:
    """``params`` with each aware datetime in UTC: orjson writes an offset to the minute,
    rounding away its seconds (+00:00:30 as +00:01), which would move the instant; in UTC
    the offset is zero and the instant exact. Naive datetimes stay as they are."""
    return [
        value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo is not None else value
        for value in params
    ]


@functools.lru_cache(maxsize=16)
def _names(count: int) -> tuple[str, ...]:
    """The keys of a query's JSON object: its index, then its ``count`` parameters."""
    return ("i", *(f"a{number}" for number in range(1, count + 1)))


def pages(records: Sequence[Sequence[Any]], count: int) -> list[JsonPage]:
    """The batch statement's records as each query's page, in the queries' order."""
    found: list[JsonPage | None] = [None] * count
    for index, items, rows, *last in records:
        found[index] = JsonPage(
            items.encode() if items is not None else b"", rows, tuple(last) if rows else None
        )
    if any(page is None for page in found):
        raise RuntimeError("the batch statement left a query without its page")
    return [page for page in found if page is not None]
