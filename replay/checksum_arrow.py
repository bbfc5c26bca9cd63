"""``checksum_chunks`` of rows a database gives as Arrow record batches (DuckDB): each column
spelled by Arrow's compute functions, in C, without a Python object per value.

A rebuild checksums every rebuilt table; fetching DuckDB's rows as Python objects (a
``datetime`` and a ``Decimal`` per value) and spelling them took most of that. Here a column
is spelled by Arrow only where Arrow's text is ``canonical_value``'s (integers, booleans,
decimals of scale up to 6 and up to 28 digits without their trailing zeros, naive timestamps
of years 1-9999 with their six fraction digits, text of printable ASCII without quote or
backslash, quoted); any other column of a batch is made Python values and spelled as
``checksum_chunks`` spells them, and a table with a column of a type not named here is read
as chunks. The checksum is the same either way (a property test says so; the golden
checksums are unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from replay.checksum import MODULUS, TableChecksum, row_digests, spelled

# What Arrow casts to canonical_value's text (with the changes made below), by type test.
_PLAIN_TEXT = r"^[ !#-\[\]-~]*$"  # printable ASCII but '"' and '\': JSON spells it as is
_TIMESTAMP_CHARS = len("2026-01-02 03:04:05.000006")


def spelled_by_arrow(schema: Any) -> bool:
    """Whether every column of ``schema`` has a type ``_spelled_column`` knows."""
    import pyarrow as pa

    def known(kind: Any) -> bool:
        if pa.types.is_timestamp(kind):
            return bool(kind.tz is None and kind.unit == "us")
        return bool(
            pa.types.is_string(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_boolean(kind)
            # canonical_value's Decimal works to 28 digits and Arrow spells a scale over 6
            # in exponent form: other decimals are spelled row by row.
            or (pa.types.is_decimal(kind) and kind.scale <= 6 and kind.precision <= 28)
        )

    return all(known(kind) for kind in schema.types)


def _spelled_column(column: Any, pool: Any) -> Any:
    """canonical_value of each value of an Arrow column, as an Arrow string array (its
    buffers from ``pool``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_string(kind):
        plain = pc.match_substring_regex(column, _PLAIN_TEXT, memory_pool=pool)
        if pc.all(plain, memory_pool=pool).as_py() is not False:
            text = pc.binary_join_element_wise('"', column, '"', "", memory_pool=pool)
        else:
            text = _spelled_in_python(column)
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        text = pc.cast(column, pa.string(), memory_pool=pool)
    elif pa.types.is_decimal(kind):
        text = pc.cast(column, pa.string(), memory_pool=pool)
        if kind.scale > 0:
            # 20.000000 -> 20, 0.000000 -> 0, -1.500000 -> -1.5: the normalized Decimal.
            text = pc.utf8_rtrim(text, "0", memory_pool=pool)
            text = pc.utf8_rtrim(text, ".", memory_pool=pool)
    else:  # a naive timestamp in microseconds (spelled_by_arrow)
        text = pc.cast(column, pa.string(), memory_pool=pool)
        lengths = pc.min_max(pc.utf8_length(text, memory_pool=pool), memory_pool=pool)
        if {lengths["min"].as_py(), lengths["max"].as_py()} - {None, _TIMESTAMP_CHARS}:
            # A year outside 1-9999, which Python's datetime does not hold either.
            return _spelled_in_python(column)
        text = pc.replace_substring(text, " ", "T", max_replacements=1, memory_pool=pool)
        text = pc.binary_join_element_wise(text, "+00:00", "", memory_pool=pool)
    return pc.coalesce(text, "null", memory_pool=pool)


def _spelled_in_python(column: Any) -> Any:
    import pyarrow as pa

    return pa.array(list(spelled(column.to_pylist())), pa.string())


def checksum_batches(table: str, batches: Iterable[Any]) -> TableChecksum | None:
    """checksum_chunks of the rows of Arrow record ``batches``: each row's text joined by
    Arrow, then hashed; None, having read only the first batch, if a column has a type
    ``spelled_by_arrow`` does not take (the table is then read as chunks)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # The system's allocator, which gives large blocks back when they are freed: Arrow's
    # default one kept each batch's intermediate columns (70 MiB more at 50,000 rows).
    pool = pa.system_memory_pool()
    count = 0
    total = 0
    for batch in batches:
        if not count and not spelled_by_arrow(batch.schema):
            return None
        if not batch.num_rows:
            continue
        names = batch.schema.names
        order = sorted(range(len(names)), key=names.__getitem__)
        # canonical_row's text: "name=value" by column name, joined by \x1f.
        parts: list[Any] = []
        for place, index in enumerate(order):
            parts.append(("\x1f" if place else "") + names[index] + "=")
            parts.append(_spelled_column(batch.column(index), pool))
        texts = pc.binary_join_element_wise(*parts, "", memory_pool=pool)
        texts = texts.cast(pa.binary(), memory_pool=pool)
        total += sum(row_digests(texts.to_pylist()))
        count += batch.num_rows
    return TableChecksum(table, count, total % MODULUS)
