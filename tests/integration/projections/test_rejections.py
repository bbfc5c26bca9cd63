"""Every recorded rejection shows in the analytics, also one that named no aggregate (a
stop for an unknown session, a capture without an authorisation): real DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from domain.application import BillingApplication
from domain.commands import (
    AuthorisePayment,
    CapturePayment,
    PublishTariff,
    StartSession,
    StopSession,
)
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.runner import LedgerSource, Projector
from tests.unit.projections.scenario import at


@pytest.fixture
def ledger() -> Iterator[BillingApplication]:
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for command in (
        PublishTariff(
            event_id="e1",
            occurred_at=at(0),
            tariff_id="T1",
            currency="EUR",
            price_per_kwh=Decimal("0.39"),
            vat_rate=Decimal("0.19"),
        ),
        StartSession(
            event_id="e2",
            occurred_at=at(1),
            session_id="S1",
            station_id="ST-A",
            connector_id="1",
            customer_id="C1",
            tariff_id="T1",
            meter_start_wh=0,
        ),
        StopSession(event_id="e3", occurred_at=at(2), session_id="S-NONE", meter_stop_wh=10),
        CapturePayment(event_id="e4", occurred_at=at(3), payment_id="P-NONE", amount_minor=5),
        AuthorisePayment(
            event_id="e5",
            occurred_at=at(4),
            payment_id="P1",
            session_id="S1",
            amount_minor=100,
            currency="EUR",
            method="card",
        ),
        # Recorded on the payment: the view finds its session's station and customer.
        CapturePayment(event_id="e6", occurred_at=at(5), payment_id="P1", amount_minor=500),
    ):
        app.handle(command)
    yield app
    app.close()


def test_rejections_without_an_aggregate_show_with_their_reason(
    ledger: BillingApplication, duck: DuckDatabase
) -> None:
    projector = Projector(LedgerSource.of(ledger), [Analytics(duck)], batch_size=4)
    projector.create()
    projector.run_until_idle()
    rows = duck.execute(
        "SELECT event_id, message_type, reason, aggregate_kind, station_id, customer_id,"
        " recorded_at IS NOT NULL AS timed FROM rejections ORDER BY event_id"
    )
    assert [{k: v for k, v in row.items() if k != "reason"} for row in rows] == [
        {
            "event_id": "e3",
            "message_type": "session.stopped",
            "aggregate_kind": None,
            "station_id": None,
            "customer_id": None,
            "timed": True,
        },
        {
            "event_id": "e4",
            "message_type": "payment.captured",
            "aggregate_kind": None,
            "station_id": None,
            "customer_id": None,
            "timed": True,
        },
        {
            "event_id": "e6",
            "message_type": "payment.captured",
            "aggregate_kind": "payment",
            "station_id": "ST-A",
            "customer_id": "C1",
            "timed": True,
        },
    ]
    reasons = [str(row["reason"]) for row in rows]
    assert reasons[0] == "unknown session S-NONE"
    assert reasons[1].startswith("unknown payment P-NONE")
    assert reasons[2]
    occurred = duck.execute("SELECT occurred_at FROM rejections WHERE event_id = 'e6'")
    assert occurred[0]["occurred_at"] is not None
