"""Rows of a read-model query written as JSON text by PostgreSQL (row_to_json), as
pydantic writes the values psycopg loads, so that no value of an API page is converted to a
Python object and back; for one page (postgres_async.py) and a batch (postgres_pages.py)."""

from __future__ import annotations

from projections.databases.port import COLUMNS, JsonFormat

# Each format's select-list entry for column {c}, written as pydantic writes the value
# psycopg loads: a time in the session's zone as RFC 3339, `Z` for UTC, the microseconds
# only when there are some (one to_char and two replaces: five to_char calls per time cost
# PostgreSQL about 8% more per page); a decimal as its exact text.
_TIME = (
    "replace(replace(to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'),"
    " '.000000', ''), '+00:00', 'Z')"
)
_JSON_COLUMN = {
    JsonFormat.PLAIN: "{c}",
    JsonFormat.TIME: _TIME + " AS {c}",
    JsonFormat.DECIMAL: "{c}::text AS {c}",
}


def json_select(
    query: str, columns: tuple[str, ...], formats: tuple[str, ...], keys: tuple[str, ...]
) -> str:
    """``query``'s rows as JSON text (column ``doc``) with their keys, unordered, in the
    port's placeholders. The query selects the columns as they are (its ORDER BY and index
    see the columns, not their text); a select around it writes each row as text."""
    written = ", ".join(
        _JSON_COLUMN[JsonFormat(kind)].format(c=name)
        for name, kind in zip(columns, formats, strict=True)
    )
    selected = ", ".join([*columns, *(key for key in keys if key not in columns)])
    rows = query.replace(COLUMNS, selected)
    return (
        f"SELECT (SELECT row_to_json(j) FROM (SELECT {written}) j)::text AS doc,"
        f" {', '.join(keys)} FROM ({rows}) r"
    )
