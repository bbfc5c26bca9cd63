"""A history page put together from its rows' JSON (each as pydantic's serialiser writes
the row, which `AsyncDatabase.json_rows` gives) is byte for byte the document the page's
pydantic model gives, whatever the values (times in any offset, exact decimals, nulls, any
text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import to_json

from api.schemas import SUMMARY_FORMATS, PaymentPage, PaymentSummary, page_json
from projections.databases.port import JsonFormat
from projections.payment_history import HISTORY_COLUMNS

_ZONES = st.sampled_from(
    [
        UTC,
        ZoneInfo("Etc/UTC"),
        ZoneInfo("Europe/Berlin"),
        timezone(timedelta(hours=-3, minutes=-30)),
    ]
)
_TIMES = st.one_of(st.none(), st.datetimes(timezones=_ZONES))
_TEXT = st.one_of(st.none(), st.text(max_size=20))
_MINOR = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))
_KWH = st.one_of(
    st.none(),
    st.decimals(min_value=0, max_value=10**11, places=3, allow_nan=False, allow_infinity=False),
)


def _column(name: str) -> st.SearchStrategy[Any]:
    if name == "payment_id":
        return st.text(min_size=1, max_size=20)
    if name.endswith("_at"):
        return _TIMES
    if name.endswith("_minor"):
        return _MINOR
    if name == "energy_kwh":
        return _KWH
    if name == "tariff_version":
        return st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1))
    return _TEXT


# Keyed in column order, as the database adapters build rows (rows_of).
_ROW = st.tuples(*(_column(name) for name in SUMMARY_FORMATS)).map(
    lambda values: dict(zip(SUMMARY_FORMATS, values, strict=True))
)


def test_the_summary_columns_are_the_summary_fields_in_order() -> None:
    assert list(SUMMARY_FORMATS) == list(PaymentSummary.model_fields)
    # Each a column of the read model, in its order; only the line items left out.
    assert list(SUMMARY_FORMATS) == [name for name in HISTORY_COLUMNS if name != "line_items"]


def test_times_and_decimals_are_written_as_such() -> None:
    assert SUMMARY_FORMATS["created_at"] == JsonFormat.TIME
    assert SUMMARY_FORMATS["energy_kwh"] == JsonFormat.DECIMAL
    assert SUMMARY_FORMATS["net_minor"] == SUMMARY_FORMATS["status"] == JsonFormat.PLAIN


@given(rows=st.lists(_ROW, max_size=5), cursor=_TEXT, link=_TEXT)
def test_a_page_from_rows_is_the_models_document(
    rows: list[dict[str, Any]], cursor: str | None, link: str | None
) -> None:
    modelled = PaymentPage(
        items=[PaymentSummary(**row) for row in rows], next_cursor=cursor, next=link
    ).model_dump_json()
    assert page_json([to_json(row) for row in rows], cursor, link).decode() == modelled


def test_an_energy_keeps_its_exact_digits() -> None:
    row = dict.fromkeys(SUMMARY_FORMATS) | {
        "payment_id": "P-1",
        "energy_kwh": Decimal("12.340"),
        "created_at": datetime(2024, 5, 1, 10, tzinfo=ZoneInfo("Etc/UTC")),
    }
    document = page_json([to_json(row)], None, None).decode()
    assert '"energy_kwh":"12.340"' in document
    assert '"created_at":"2024-05-01T10:00:00Z"' in document
