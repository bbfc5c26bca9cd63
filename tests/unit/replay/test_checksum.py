"""Table checksums: one canonical spelling per value whatever the database returned,
independent of row and column order, and sensitive to any changed, missing or extra row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from replay.checksum import canonical_value, checksum_chunks, checksum_rows, differing_tables

# Tests assert no time: on a machine shared with other work one example can take 400 ms.
NO_DEADLINE = settings(deadline=None)

MOMENT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_one_spelling_per_value_across_databases() -> None:
    # PostgreSQL NUMERIC(14,3) vs the text SQLite kept; TIMESTAMPTZ in another zone vs
    # DuckDB's naive UTC TIMESTAMP; JSONB dicts in any key order.
    assert canonical_value(Decimal("20.000")) == canonical_value(Decimal("20")) == "20"
    assert canonical_value(Decimal("0.000")) == "0"
    assert canonical_value(Decimal("1.2300")) == "1.23"
    assert canonical_value(Decimal("1E+2")) == "100"
    berlin = MOMENT.astimezone(timezone(timedelta(hours=1)))
    assert canonical_value(berlin) == canonical_value(MOMENT.replace(tzinfo=None))
    # JSON as stored (Decimals as their text), whatever the key order.
    assert canonical_value({"b": 1, "a": [Decimal("1.50")]}) == canonical_value(
        {"a": ["1.50"], "b": 1}
    )
    assert canonical_value(True) != canonical_value(1)
    assert canonical_value(None) != canonical_value("null")
    assert canonical_value("7") != canonical_value(7)


rows = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.text(max_size=5),
            "amount_minor": st.integers(-(10**12), 10**12) | st.none(),
            "at": st.datetimes(timezones=st.just(UTC)) | st.none(),
        }
    ),
    max_size=20,
)


@NO_DEADLINE
@given(rows, st.randoms())
def test_order_of_rows_and_columns_does_not_matter(table: list[dict[str, object]], rng) -> None:  # type: ignore[no-untyped-def]
    shuffled = [dict(reversed(list(row.items()))) for row in table]
    rng.shuffle(shuffled)
    assert checksum_rows("t", table) == checksum_rows("t", shuffled)


@NO_DEADLINE
@given(rows.filter(bool))
def test_a_changed_missing_or_repeated_row_changes_the_checksum(
    table: list[dict[str, object]],
) -> None:
    original = checksum_rows("t", table)
    changed = [dict(table[0], amount_minor=(table[0]["amount_minor"] or 0) + 1), *table[1:]]  # type: ignore[operator]
    assert not checksum_rows("t", changed).matches(original)
    assert not checksum_rows("t", table[1:]).matches(original)
    assert not checksum_rows("t", [*table, table[0]]).matches(original)
    assert not checksum_rows("t", [*table, table[0], table[0]]).matches(original)


def test_differing_tables_names_them() -> None:
    same = checksum_rows("a", [{"x": 1}])
    live = {"a": same, "b": checksum_rows("b", [{"x": 1}])}
    rebuilt = {"a": same, "b": checksum_rows("b", [{"x": 2}]), "c": checksum_rows("c", [])}
    assert differing_tables(live, rebuilt) == ["b", "c"]


# Every type a driver returns, a column of one type or of several (NULLs, naive and aware
# timestamps together), and names that str.format would read as fields.
any_value = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.text(max_size=4)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.datetimes()
    | st.datetimes(timezones=st.just(timezone(timedelta(hours=-3))))
    | st.dictionaries(st.text(max_size=2), st.integers() | st.text(max_size=2), max_size=2)
    | st.binary(max_size=3)
)
columns = {
    "b{0}": st.text(max_size=5),
    "a": st.integers() | st.none(),
    "c}": st.datetimes() | st.none(),
    "d": st.decimals(allow_nan=False, allow_infinity=False, places=2),
    "e": any_value,
}


@NO_DEADLINE
@given(st.lists(st.fixed_dictionaries(columns), max_size=30), st.integers(1, 7))
def test_chunks_give_the_rows_checksum(table: list[dict[str, object]], size: int) -> None:
    names = list(columns)
    records = [tuple(row[name] for name in names) for row in table]
    chunks = [(names, records[start : start + size]) for start in range(0, len(records), size)]
    assert checksum_chunks("t", chunks) == checksum_rows("t", table)
