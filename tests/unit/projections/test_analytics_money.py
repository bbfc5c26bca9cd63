"""Money in the analysts' views stays exact: integer minor units or DECIMAL, never DOUBLE
(DuckDB divides even DECIMALs as DOUBLE, so no view may use ``/``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from projections.analytics import _VIEWS, VIEW_NAMES, Analytics
from projections.databases.duckdb import DuckDatabase

_EXACT = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|DECIMAL\(\d+,\d+\))$")


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[Analytics]:
    model = Analytics(DuckDatabase(tmp_path / "analytics.duckdb"))
    model.create()
    yield model
    model.db.close()


def _add_session(model: Analytics, key: str, customer: str, *, total: int, energy_wh: int) -> None:
    model.db.execute(
        "INSERT INTO fact_sessions (session_key, customer_id, station_id, tariff_id,"
        " tariff_version, currency, subtotal_minor, vat_minor, total_minor, energy_wh,"
        " energy_kwh) VALUES (?, ?, 'ST1', 'T1', 1, 'EUR', ?, 0, ?, ?, ?)",
        [key, customer, total, total, energy_wh, Decimal(energy_wh) / 1000],
    )


def test_no_view_divides_in_double() -> None:
    for name, body in _VIEWS.items():
        assert not re.search(r"(?<!/)/(?!/)", body), f"{name} divides with / (DOUBLE)"


def test_every_numeric_column_of_every_view_is_exact(analytics: Analytics) -> None:
    for view in VIEW_NAMES:
        for column in analytics.db.execute(f"DESCRIBE {view}"):
            column_type = str(column["column_type"])
            if column_type in {"VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP", "JSON"}:
                continue
            assert _EXACT.match(column_type), f"{view}.{column['column_name']}: {column_type}"


def test_average_spend_is_half_up_in_integers(analytics: Analytics) -> None:
    # 4 x k + (k + 2) over 5 sessions is k + 0.4, which a DOUBLE near 2**50 holds as k + 0.5.
    k = 2**50
    for number, total in enumerate([k, k, k, k, k + 2]):
        _add_session(analytics, f"big-{number}", "C-big", total=total, energy_wh=1000)
    # 5 + 6 over 2 is 5.5: half up.
    _add_session(analytics, "a", "C-half", total=5, energy_wh=1000)
    _add_session(analytics, "b", "C-half", total=6, energy_wh=1000)
    rows = analytics.db.execute(
        "SELECT customer_id, average_spend_minor FROM customer_behaviour ORDER BY customer_id"
    )
    assert [(r["customer_id"], r["average_spend_minor"]) for r in rows] == [
        ("C-big", k),
        ("C-half", 6),
    ]


def test_net_minor_per_kwh_is_an_exact_decimal(analytics: Analytics) -> None:
    # 8007 minor over 200 kWh is 40.035 exactly: half up 40.04 (a DOUBLE gives 40.03).
    _add_session(analytics, "a", "C1", total=4003, energy_wh=100_000)
    _add_session(analytics, "b", "C2", total=4004, energy_wh=100_000)
    rows = analytics.db.execute("SELECT net_minor_per_kwh FROM pricing_by_tariff")
    assert rows == [{"net_minor_per_kwh": Decimal("40.04")}]
