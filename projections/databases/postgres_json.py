"""Rows of a read-model query written as JSON text by PostgreSQL (row_to_json), as
pydantic writes the values psycopg loads, so that no value of an API page is converted to a
Python object and back; for one page (postgres_async.py) and a batch (postgres_pages.py).
The same text can be stored with each row when it is written (`json_text`), so that a page
selects it instead of writing it."""

from __future__ import annotations

from collections.abc import Mapping

from projections.databases.port import COLUMNS, JsonFormat

# Each format's select-list entry for column {c}, written as pydantic writes the value
# psycopg loads in a UTC session: a time in UTC as RFC 3339 with `Z`, the microseconds only
# when there are some, whatever the zone of the session writing it (the projector storing
# the text and the API reading it may be in different zones); a decimal as its exact text.
_TIME = (
    "replace(to_char(({c}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '')"
    " || 'Z'"
)
_JSON_COLUMN = {
    JsonFormat.PLAIN: "{c}",
    JsonFormat.TIME: _TIME + " AS {c}",
    JsonFormat.DECIMAL: "{c}::text AS {c}",
}


def _row_json(columns: tuple[str, ...], formats: tuple[str, ...]) -> str:
    """An expression writing the columns of the row in scope as one JSON object's text."""
    written = ", ".join(
        _JSON_COLUMN[JsonFormat(kind)].format(c=name)
        for name, kind in zip(columns, formats, strict=True)
    )
    return f"(SELECT row_to_json(j) FROM (SELECT {written}) j)::text"


def json_text(columns: Mapping[str, JsonFormat]) -> str:
    """`Dialect.json_text`: the text `json_select` writes for a row's ``columns``, to be
    stored with the row (the same in every session zone: times in UTC)."""
    return _row_json(tuple(columns), tuple(kind.value for kind in columns.values()))


def json_select(
    query: str,
    columns: tuple[str, ...],
    formats: tuple[str, ...],
    keys: tuple[str, ...],
    stored: str | None = None,
) -> str:
    """``query``'s rows as JSON text (column ``doc``) with their keys, unordered, in the
    port's placeholders. The query selects the columns as they are (its ORDER BY and index
    see the columns, not their text); a select around it writes each row as text, or takes
    the ``stored`` column's text (written when the row was; a row without one, as a table
    being filled may hold, is written here)."""
    if stored is None:
        wanted, doc = [*columns], _row_json(columns, formats)
    else:
        wanted = [*columns, stored]
        doc = f"COALESCE({stored}, {_row_json(columns, formats)})"
    selected = ", ".join([*wanted, *(key for key in keys if key not in wanted)])
    rows = query.replace(COLUMNS, selected)
    return f"SELECT {doc} AS doc, {', '.join(keys)} FROM ({rows}) r"
