"""A known ledger for the projection tests: every payment and refund path, built by
calling the real application's commands, and the rows the read models must show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.application import BillingApplication
from domain.commands import (
    ApproveRefund,
    AuthorisePayment,
    CapturePayment,
    Command,
    FailPayment,
    FailRefund,
    IssueRefund,
    PublishTariff,
    RejectRefund,
    RequestRefund,
    StartSession,
    StopSession,
    VoidPayment,
)

T0 = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)  # a Monday


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class _Ids:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"evt-{self.count:03d}"


def commands() -> list[Command]:
    """The scenario in the order upstream sends it (payment P2 is captured before its
    session is priced; refund R4 names a payment that does not exist)."""
    e = _Ids()
    return [
        PublishTariff(
            event_id=e(),
            occurred_at=at(-1440),
            tariff_id="T1",
            currency="EUR",
            price_per_kwh=Decimal("0.39"),
            vat_rate=Decimal("0.19"),
            session_fee=50,
        ),
        # S1 at station A: 20 kWh -> 780 + 50 fee = 830 + VAT 158 = 988, captured exactly.
        StartSession(
            event_id=e(),
            occurred_at=at(0),
            session_id="S1",
            station_id="ST-A",
            connector_id="1",
            customer_id="C1",
            tariff_id="T1",
            meter_start_wh=1000,
        ),
        AuthorisePayment(
            event_id=e(),
            occurred_at=at(0),
            payment_id="P1",
            session_id="S1",
            amount_minor=2000,
            currency="EUR",
            method="card",
        ),
        StopSession(event_id=e(), occurred_at=at(40), session_id="S1", meter_stop_wh=21000),
        CapturePayment(event_id=e(), occurred_at=at(41), payment_id="P1", amount_minor=988),
        # S2 at station B: 10 kWh -> 390 + 50 = 440 + VAT 84 = 524; 600 captured before the
        # stop, so reconciliation finds an overcharge of 76 when the session is priced.
        StartSession(
            event_id=e(),
            occurred_at=at(120),
            session_id="S2",
            station_id="ST-B",
            connector_id="2",
            customer_id="C1",
            tariff_id="T1",
            meter_start_wh=0,
        ),
        AuthorisePayment(
            event_id=e(),
            occurred_at=at(120),
            payment_id="P2",
            session_id="S2",
            amount_minor=1500,
            currency="EUR",
            method="app",
        ),
        CapturePayment(event_id=e(), occurred_at=at(150), payment_id="P2", amount_minor=600),
        StopSession(event_id=e(), occurred_at=at(180), session_id="S2", meter_stop_wh=10000),
        # R1: the proven overcharge, approved automatically, then paid out.
        RequestRefund(
            event_id=e(),
            occurred_at=at(200),
            refund_id="R1",
            payment_id="P2",
            amount_minor=76,
            reason="overcharge",
        ),
        IssueRefund(event_id=e(), occurred_at=at(260), refund_id="R1", processor_ref="pr-1"),
        # R2 on P1: approved by an agent, then the processor fails it.
        RequestRefund(
            event_id=e(),
            occurred_at=at(300),
            refund_id="R2",
            payment_id="P1",
            amount_minor=300,
            reason="service_quality",
            note="slow charging",
        ),
        ApproveRefund(event_id=e(), occurred_at=at(320), refund_id="R2", decided_by="agent-7"),
        FailRefund(event_id=e(), occurred_at=at(330), refund_id="R2", reason="card expired"),
        # R3 on P1: rejected by an agent.
        RequestRefund(
            event_id=e(),
            occurred_at=at(340),
            refund_id="R3",
            payment_id="P1",
            amount_minor=100,
            reason="duplicate",
        ),
        RejectRefund(
            event_id=e(),
            occurred_at=at(350),
            refund_id="R3",
            decided_by="agent-9",
            note="not a duplicate",
        ),
        # R4 names an unknown payment: the system rejects it at once.
        RequestRefund(
            event_id=e(),
            occurred_at=at(360),
            refund_id="R4",
            payment_id="P-UNKNOWN",
            amount_minor=50,
            reason="other",
        ),
        # S3 at station A by C2: the pre-authorisation is declined.
        StartSession(
            event_id=e(),
            occurred_at=at(400),
            session_id="S3",
            station_id="ST-A",
            connector_id="2",
            customer_id="C2",
            tariff_id="T1",
            meter_start_wh=0,
        ),
        FailPayment(
            event_id=e(),
            occurred_at=at(400),
            payment_id="P3",
            session_id="S3",
            reason="insufficient funds",
        ),
        StopSession(event_id=e(), occurred_at=at(430), session_id="S3", meter_stop_wh=5000),
        # P4 for a session upstream never reported: authorised, then voided.
        AuthorisePayment(
            event_id=e(),
            occurred_at=at(500),
            payment_id="P4",
            session_id="S-GHOST",
            amount_minor=1000,
            currency="EUR",
            method="rfid",
        ),
        VoidPayment(event_id=e(), occurred_at=at(510), payment_id="P4", reason="cancelled"),
        # A capture above the hold is a recorded rejection, not a change.
        CapturePayment(event_id=e(), occurred_at=at(520), payment_id="P4", amount_minor=5000),
    ]


def build_ledger(app: BillingApplication) -> None:
    for command in commands():
        app.handle(command)


# The rows the read models must hold for this scenario (the columns tests compare).
EXPECTED_HISTORY: dict[str, dict[str, Any]] = {
    "P1": {
        "customer_id": "C1",
        "station_id": "ST-A",
        "connector_id": "1",
        "session_id": "S1",
        "energy_kwh": Decimal("20.000"),
        "tariff_id": "T1",
        "tariff_version": 1,
        "status": "captured",
        "authorised_minor": 2000,
        "captured_minor": 988,
        "refunded_minor": 0,
        "net_minor": 988,
        "session_total_minor": 988,
        "reconciliation": "exact",
        "discrepancy_minor": 0,
    },
    "P2": {
        "customer_id": "C1",
        "station_id": "ST-B",
        "connector_id": "2",
        "session_id": "S2",
        "energy_kwh": Decimal("10.000"),
        "tariff_id": "T1",
        "tariff_version": 1,
        "status": "captured",
        "authorised_minor": 1500,
        "captured_minor": 600,
        "refunded_minor": 76,
        "net_minor": 524,
        "session_total_minor": 524,
        "reconciliation": "overcharge",
        "discrepancy_minor": 76,
    },
    "P3": {
        "customer_id": "C2",
        "station_id": "ST-A",
        "connector_id": "2",
        "session_id": "S3",
        "energy_kwh": Decimal("5.000"),
        "tariff_id": "T1",
        "tariff_version": 1,
        "status": "declined",
        "authorised_minor": None,
        "captured_minor": None,
        "refunded_minor": 0,
        "net_minor": 0,
        "session_total_minor": 292,
        "reconciliation": None,
        "discrepancy_minor": None,
    },
    "P4": {
        "customer_id": None,
        "station_id": None,
        "connector_id": None,
        "session_id": "S-GHOST",
        "energy_kwh": None,
        "tariff_id": None,
        "tariff_version": None,
        "status": "voided",
        "authorised_minor": 1000,
        "captured_minor": None,
        "refunded_minor": 0,
        "net_minor": 0,
        "session_total_minor": None,
        "reconciliation": None,
        "discrepancy_minor": None,
    },
}

EXPECTED_REFUNDS: dict[str, dict[str, Any]] = {
    "R1": {
        "status": "issued",
        "payment_id": "P2",
        "customer_id": "C1",
        "station_id": "ST-B",
        "amount_minor": 76,
        "reason": "overcharge",
        "decided_by": "system",
        "automatic": True,
        "rejection_reason": None,
        "processor_ref": "pr-1",
        "requested_at": at(200),
        "decided_at": at(200),
        "issued_at": at(260),
    },
    "R2": {
        "status": "failed",
        "payment_id": "P1",
        "customer_id": "C1",
        "station_id": "ST-A",
        "amount_minor": 300,
        "reason": "service_quality",
        "decided_by": "agent-7",
        "automatic": False,
        "rejection_reason": None,
        "processor_ref": None,
        "requested_at": at(300),
        "decided_at": at(320),
        "issued_at": None,
    },
    "R3": {
        "status": "rejected",
        "payment_id": "P1",
        "customer_id": "C1",
        "station_id": "ST-A",
        "amount_minor": 100,
        "reason": "duplicate",
        "decided_by": "agent-9",
        "automatic": False,
        "rejection_reason": "not a duplicate",
        "processor_ref": None,
        "requested_at": at(340),
        "decided_at": at(350),
        "issued_at": None,
    },
    "R4": {
        "status": "rejected",
        "payment_id": "P-UNKNOWN",
        "customer_id": None,
        "station_id": None,
        "amount_minor": 50,
        "reason": "other",
        "decided_by": "system",
        "automatic": True,
        "rejection_reason": "unknown payment P-UNKNOWN",
        "processor_ref": None,
        "requested_at": at(360),
        "decided_at": at(360),
        "issued_at": None,
    },
}


def traffic_ledger(app: BillingApplication, days: int = 1, seed: int = 7) -> int:
    """Realistic traffic (demo.traffic) through the real commands; the events stored."""
    import json

    from consumers.contract import parse_message
    from consumers.translate import to_command
    from demo.traffic import TrafficShape, generate

    messages = generate(seed, TrafficShape(days=days))
    commands = [to_command(parse_message(json.dumps(message).encode())) for message in messages]
    for start in range(0, len(commands), 200):
        app.handle_batch(commands[start : start + 200])
    return app.recorder.max_notification_id() or 0
