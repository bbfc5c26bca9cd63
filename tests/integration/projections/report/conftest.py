"""Analytics databases for the report's tests: a tiny hand-made one whose every figure is
known, and the demo's generated traffic (a few days) projected for real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase

# (session, station, customer, tariff, currency, local start, minutes, net, vat, Wh)
SESSIONS = [
    ("S1", "ST-A", "C1", "T1", "EUR", datetime(2026, 3, 2, 8, 30), 60, 1000, 190, 10_000),
    ("S2", "ST-A", "C1", "T1", "EUR", datetime(2026, 3, 3, 18, 10), 30, 500, 95, 5_000),
    ("S3", "ST-B", "C2", "T1", "EUR", datetime(2026, 3, 3, 18, 40), 120, 2000, 380, 20_000),
    ("S4", "ST-C", "C3", "T2", "GBP", datetime(2026, 3, 3, 9, 0), 45, 700, 140, 7_000),
]
# (payment, session, currency, status, failure reason, authorised, captured)
PAYMENTS = [
    ("P1", "S1", "EUR", "captured", None, 5000, 1190),
    ("P2", "S2", "EUR", "captured", None, 5000, 595),
    ("P3", "S3", "EUR", "declined", "card_declined", 0, 0),
    ("P4", "S4", "GBP", "captured", None, 3000, 840),
]
# (refund, payment, session, amount, reason, status, issued)
REFUNDS = [
    ("R1", "P1", "S1", 100, "overcharge", "issued", 100),
    ("R2", "P1", "S1", 50, "overcharge", "rejected", None),
]


@pytest.fixture
def known_db(tmp_path: Path) -> Iterator[DuckDatabase]:
    """The hand-made analytics file, opened read-only as the report opens it."""
    path = tmp_path / "analytics.duckdb"
    model = Analytics(DuckDatabase(path))
    model.create()
    db = model.db
    for key, station, customer, tariff, currency, local, minutes, net, vat, wh in SESSIONS:
        # UTC is the local time minus one hour (Europe/Berlin in March).
        started = local - timedelta(hours=1)
        db.execute(
            "INSERT INTO fact_sessions (session_key, session_id, station_id, connector_id,"
            " customer_id, tariff_id, tariff_version, currency, started_at, started_at_local,"
            " stopped_at, subtotal_minor, vat_minor, total_minor, energy_wh, energy_kwh,"
            " charging_seconds, idle_seconds) VALUES (?, ?, ?, '1', ?, ?, 1, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, 0)",
            [
                key, key, station, customer, tariff, currency, started, local,
                started + timedelta(minutes=minutes), net, vat, net + vat, wh,
                Decimal(wh) / 1000, minutes * 60,
            ],
        )  # fmt: skip
    line_items = [("S1", 1, "energy", 800), ("S1", 2, "session_fee", 200)]
    line_items += [("S2", 1, "energy", 500), ("S3", 1, "energy", 2000), ("S4", 1, "energy", 700)]
    for session, line_no, component, amount in line_items:
        currency = "GBP" if session == "S4" else "EUR"
        db.execute(
            "INSERT INTO fact_line_items (session_key, line_no, component, unit, quantity,"
            " amount_minor, currency) VALUES (?, ?, ?, 'kWh', 1, ?, ?)",
            [session, line_no, component, amount, currency],
        )
    for payment, session, currency, status, reason, authorised, captured in PAYMENTS:
        db.execute(
            "INSERT INTO fact_payments (payment_key, payment_id, session_key, currency, status,"
            " failure_reason, authorised_minor, captured_minor, discrepancy_minor, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            [payment, payment, session, currency, status, reason, authorised, captured,
             datetime(2026, 3, 3)],
        )  # fmt: skip
    for refund, payment, session, amount, reason, status, issued in REFUNDS:
        db.execute(
            "INSERT INTO fact_refunds (refund_key, refund_id, payment_key, session_key,"
            " amount_minor, currency, reason, status, issued_minor) VALUES (?, ?, ?, ?, ?,"
            " 'EUR', ?, ?, ?)",
            [refund, refund, payment, session, amount, reason, status, issued],
        )
    postings = [
        (1, 1, "customer_receivable", "debit", 1190, "EUR"),
        (1, 2, "charging_revenue", "credit", 1000, "EUR"),
        (1, 3, "vat_payable", "credit", 190, "EUR"),
        (2, 1, "customer_receivable", "debit", 840, "GBP"),
        (2, 2, "charging_revenue", "credit", 840, "GBP"),
    ]
    for notification, line_no, account, direction, amount, currency in postings:
        db.execute(
            "INSERT INTO fact_postings (notification_id, line_no, account, direction,"
            " amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?)",
            [notification, line_no, account, direction, amount, currency],
        )
    db.close()
    reader = DuckDatabase(path, read_only=True)
    yield reader
    reader.close()


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of the demo's traffic for four stations, through the whole pipeline."""
    from demo.pipeline import run_demo
    from demo.traffic import TrafficShape

    data_dir = tmp_path_factory.mktemp("report-demo") / "demo"
    run_demo(data_dir, seed=7, shape=TrafficShape(stations=4, customers=160, days=3))
    return data_dir
