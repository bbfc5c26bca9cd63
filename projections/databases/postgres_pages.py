"""Many `JsonQuery` pages in one PostgreSQL statement (`AsyncDatabase.json_pages`): the
queries' parameters go in as arrays, one row per query (`unnest`), and each query runs as a
LATERAL subquery over its row, which also joins its page's JSON objects and picks its last
row's keys; so PostgreSQL parses, plans and starts one statement, and the client reads one
row, per batch instead of one statement and a row per item per page.

Queries of the same shape (statement, columns, order, keys and parameter types) share one
LATERAL; a batch of several shapes is their UNION ALL, written once per set of shapes."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from projections.databases.port import JsonFormat, JsonPage, JsonQuery
from projections.databases.postgres import POSTGRES
from projections.databases.postgres_json import json_select

# A parameter's array type by its Python type (as psycopg binds the value alone); a value
# of any other type is not batched.
_ARRAY_TYPES: dict[type, str] = {
    str: "text",
    bool: "boolean",
    int: "bigint",
    float: "double precision",
    Decimal: "numeric",
}

Shape = tuple[str, tuple[tuple[str, str], ...], str, tuple[str, ...], tuple[str, ...], str | None]


class NotBatched(TypeError):
    """A query that one statement for many cannot hold (a parameter of another type)."""


def _array_type(value: Any) -> str:
    if isinstance(value, datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    found = _ARRAY_TYPES.get(type(value))
    if found is None:
        raise NotBatched(f"no array type for a parameter of type {type(value).__name__}")
    return found


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
    types = tuple(_array_type(value) for value in query.params)
    return (query.statement, formats, query.order, query.keys, types, query.stored)


@functools.lru_cache(maxsize=64)
def pages_statement(shapes: tuple[Shape, ...]) -> str:
    """The statement for queries of ``shapes`` (sorted, so a set is written one way): its
    parameters are each shape's query indexes, then each of its parameters' values, shape
    after shape. The order's columns must be among the keys."""
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
        arrays = ", ".join(["?::int[]", *(f"?::{kind}[]" for kind in types)])
        names = ", ".join(["i", *(f"a{number}" for number in range(1, len(types) + 1))])
        parts.append(
            f"SELECT p.i, j.* FROM unnest({arrays}) AS p({names}) CROSS JOIN LATERAL"
            f" (SELECT string_agg(d.doc, ',' ORDER BY {order}) AS items, count(*) AS n{lasts}"
            f" FROM ({rows}) d) j"
        )
    return POSTGRES.sql(" UNION ALL ".join(parts))


def batch(queries: Sequence[JsonQuery]) -> tuple[tuple[Shape, ...], list[Any]]:
    """The shapes of ``queries`` (sorted) and the batch statement's parameters."""
    groups: dict[Shape, list[int]] = {}
    for index, query in enumerate(queries):
        groups.setdefault(shape(query), []).append(index)
    shapes = tuple(sorted(groups, key=lambda each: (*each[:5], each[5] or "")))
    params: list[Any] = []
    for each in shapes:
        indexes = groups[each]
        params.append(indexes)
        for position in range(len(each[4])):
            params.append([queries[index].params[position] for index in indexes])
    return shapes, params


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
