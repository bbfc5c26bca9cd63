"""A known ledger projected into PostgreSQL, DuckDB and the embedded SQLite views gives
exactly the expected rows."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Database
from projections.databases.postgres import PostgresDatabase
from projections.databases.sqlite import SqliteDatabase
from projections.payment_history import HistoryFilter, PaymentHistory, query_history
from projections.read_model import ReadModel
from projections.refund_status import RefundStatusView, query_refunds, refund
from projections.runner import LedgerSource, Projector
from tests.unit.projections.scenario import (
    EXPECTED_HISTORY,
    EXPECTED_REFUNDS,
    T0,
    at,
    build_ledger,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def ledger() -> Iterator[BillingApplication]:
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(app)
    yield app
    app.close()


def project(ledger: BillingApplication, *models: ReadModel, batch_size: int = 5) -> None:
    projector = Projector(LedgerSource.of(ledger), list(models), batch_size=batch_size)
    projector.create()
    projector.run_until_idle()
    last = ledger.recorder.max_notification_id()
    assert all(model.position() == last for model in models)


def check_views(db: Database) -> None:
    rows = {
        row["payment_id"]: row
        for row in query_history(db, HistoryFilter(period_from=T0, limit=100)).rows
    }
    assert set(rows) == set(EXPECTED_HISTORY)
    for payment_id, expected in EXPECTED_HISTORY.items():
        assert {column: rows[payment_id][column] for column in expected} == expected, payment_id
    refunds = {row["refund_id"]: row for row in query_refunds(db)}
    assert set(refunds) == set(EXPECTED_REFUNDS)
    for refund_id, expected in EXPECTED_REFUNDS.items():
        assert {column: refunds[refund_id][column] for column in expected} == expected, refund_id
    # Queries by customer and station, newest first.
    c1 = query_history(db, HistoryFilter(customer_id="C1")).rows
    assert [row["payment_id"] for row in c1] == ["P2", "P1"]
    station_a = query_history(db, HistoryFilter(station_id="ST-A")).rows
    assert [row["payment_id"] for row in station_a] == ["P3", "P1"]
    assert [r["refund_id"] for r in query_refunds(db, status="rejected")] == ["R4", "R3"]
    assert [r["refund_id"] for r in query_refunds(db, customer_id="C1")] == ["R3", "R2", "R1"]
    assert [r["refund_id"] for r in query_refunds(db, station_id="ST-B")] == ["R1"]
    shown = refund(db, "R2", now=at(1000))
    assert shown is not None
    assert shown["note"] == "slow charging"
    assert shown["age"] == at(330) - at(300)  # closed: how long it took


def test_postgres_views(ledger: BillingApplication, pg: PostgresDatabase) -> None:
    project(ledger, PaymentHistory(pg), RefundStatusView(pg))
    check_views(pg)
    line_items = pg.execute("SELECT line_items FROM payment_history WHERE payment_id = 'P1'")
    components = [item["component"] for item in line_items[0]["line_items"]]
    assert components == ["energy", "time", "session_fee", "idle_fee"]


def test_embedded_sqlite_views(ledger: BillingApplication, tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "views.sqlite3")
    project(ledger, PaymentHistory(db), RefundStatusView(db))
    check_views(db)
    db.close()


def test_history_pages_with_a_keyset_cursor(
    ledger: BillingApplication, pg: PostgresDatabase
) -> None:
    project(ledger, PaymentHistory(pg))
    seen: list[str] = []
    page = query_history(pg, HistoryFilter(period_from=T0, limit=1))
    while True:
        seen.extend(row["payment_id"] for row in page.rows)
        if page.next_cursor is None:
            break
        page = query_history(pg, HistoryFilter(period_from=T0, limit=1, after=page.next_cursor))
    assert seen == ["P4", "P3", "P2", "P1"]
    period = HistoryFilter(period_from=at(100), period_to=at(450))
    assert [r["payment_id"] for r in query_history(pg, period).rows] == ["P3", "P2"]


# A session's identity and money, its payment and what was refunded on it; not the whole
# session row, which fact_sessions holds.
SESSION_MONEY_COLUMNS = [
    "session_id",
    "station_id",
    "customer_id",
    "tariff_id",
    "tariff_version",
    "started_at_local",
    "currency",
    "energy_kwh",
    "subtotal_minor",
    "vat_minor",
    "total_minor",
    "payment_id",
    "payment_status",
    "captured_minor",
    "refunded_minor",
]


def test_analytics(ledger: BillingApplication, duck: DuckDatabase) -> None:
    project(ledger, Analytics(duck))
    assert duck.execute("SELECT COUNT(*) AS n FROM fact_sessions")[0]["n"] == 3
    assert duck.execute("SELECT COUNT(*) AS n FROM fact_payments")[0]["n"] == 4
    assert duck.execute("SELECT COUNT(*) AS n FROM fact_refunds")[0]["n"] == 4
    assert duck.execute("SELECT currency, balanced FROM trial_balance_check") == [
        {"currency": "EUR", "balanced": True}
    ]
    balances = {
        row["account"]: row["balance_minor"]
        for row in duck.execute("SELECT account, balance_minor FROM trial_balance")
    }
    # Priced 988 + 524 + 292; captured 988 + 600; refunded 76; holds all released.
    assert balances == {
        "authorisation_holds": 0,
        "customer_holds": 0,
        "customer_receivable": 1804 - 1588,
        "processor_clearing": 1588 - 76,
        "refunds": 76,
        "charging_revenue": -(830 + 440 + 245),
        "vat_payable": -(158 + 84 + 47),
    }
    by_station = duck.execute(
        "SELECT station_id, sessions, energy_kwh, gross_revenue_minor"
        " FROM revenue_by_station_day ORDER BY station_id"
    )
    assert [
        (r["station_id"], r["sessions"], str(r["energy_kwh"]), r["gross_revenue_minor"])
        for r in by_station
    ] == [
        ("ST-A", 2, "25.000", 988 + 292),
        ("ST-B", 1, "10.000", 524),
    ]
    assert duck.execute("SELECT * FROM repeat_customers")[0]["repeat_customers"] == 1
    pricing = duck.execute("SELECT tariff_id, net_minor_per_kwh FROM pricing_by_tariff")
    assert [(r["tariff_id"], str(r["net_minor_per_kwh"])) for r in pricing] == [("T1", "43.29")]
    refunds = duck.execute(
        "SELECT station_id, reason, refunds FROM refunds_by_station_reason"
        " ORDER BY station_id NULLS LAST, reason"
    )
    assert [(r["station_id"], r["reason"], r["refunds"]) for r in refunds] == [
        ("ST-A", "duplicate", 1),
        ("ST-A", "service_quality", 1),
        ("ST-B", "overcharge", 1),
        (None, "other", 1),
    ]
    money = duck.execute("SELECT * FROM session_money ORDER BY session_id")
    assert [list(row) for row in money[:1]] == [SESSION_MONEY_COLUMNS]
    starts = duck.execute("SELECT started_at_local FROM fact_sessions ORDER BY session_id")
    assert [r["started_at_local"] for r in money] == [r["started_at_local"] for r in starts]
    assert all(r["started_at_local"] is not None for r in money)
    # The view joins on the upstream ids; the keys derived from them pair the same rows.
    by_keys = duck.execute(
        "SELECT s.session_id, p.payment_id FROM fact_sessions s"
        " LEFT JOIN fact_payments p ON p.session_key = s.session_key ORDER BY s.session_id"
    )
    assert by_keys == [{c: r[c] for c in ("session_id", "payment_id")} for r in money]
    session_part = [c for c in SESSION_MONEY_COLUMNS[:11] if c != "started_at_local"]
    payment_part = SESSION_MONEY_COLUMNS[11:]
    assert [([r[c] for c in session_part], [r[c] for c in payment_part]) for r in money] == [
        (
            ["S1", "ST-A", "C1", "T1", 1, "EUR", Decimal("20.000"), 830, 158, 988],
            ["P1", "captured", 988, 0],
        ),
        (
            ["S2", "ST-B", "C1", "T1", 1, "EUR", Decimal("10.000"), 440, 84, 524],
            ["P2", "captured", 600, 76],
        ),
        (
            ["S3", "ST-A", "C2", "T1", 1, "EUR", Decimal("5.000"), 245, 47, 292],
            ["P3", "declined", None, 0],
        ),
    ]
    rejections = duck.execute("SELECT aggregate_kind, message_type FROM fact_rejections")
    assert rejections == [{"aggregate_kind": "payment", "message_type": "payment.captured"}]
