"""A refund's status moves through every state in the refund status view (PostgreSQL)."""

from __future__ import annotations

import pytest

from domain.application import BillingApplication
from domain.commands import (
    ApproveRefund,
    Command,
    FailRefund,
    IssueRefund,
    RejectRefund,
    RequestRefund,
)
from projections.databases.postgres import PostgresDatabase
from projections.payment_history import PaymentHistory, payment
from projections.refund_status import RefundStatusView, refund
from projections.runner import LedgerSource, Projector
from tests.unit.projections.scenario import at, commands

pytestmark = pytest.mark.postgres


def test_every_refund_state(pg: PostgresDatabase) -> None:
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    # The scenario up to P1 captured (988) and its session priced.
    for command in commands()[:5]:
        app.handle(command)
    view = RefundStatusView(pg)
    history = PaymentHistory(pg)
    projector = Projector(LedgerSource.of(app), [view, history], batch_size=3)
    projector.create()
    seen: dict[str, list[str]] = {}

    def send(command: Command) -> None:
        app.handle(command)
        projector.run_until_idle()
        for refund_id in ("RA", "RB", "RC"):
            row = refund(pg, refund_id)
            if row is not None and seen.setdefault(refund_id, [""])[-1] != row["status"]:
                seen[refund_id].append(row["status"])

    def request(refund_id: str, minutes: int, amount: int) -> RequestRefund:
        return RequestRefund(
            event_id=f"req-{refund_id}",
            occurred_at=at(minutes),
            refund_id=refund_id,
            payment_id="P1",
            amount_minor=amount,
            reason="service_quality",
        )

    send(request("RA", 100, 100))
    send(ApproveRefund(event_id="ok-RA", occurred_at=at(110), refund_id="RA", decided_by="ana"))
    send(IssueRefund(event_id="pay-RA", occurred_at=at(120), refund_id="RA", processor_ref="x1"))
    send(request("RB", 130, 50))
    send(RejectRefund(event_id="no-RB", occurred_at=at(140), refund_id="RB", decided_by="bo"))
    send(request("RC", 150, 200))
    send(ApproveRefund(event_id="ok-RC", occurred_at=at(160), refund_id="RC", decided_by="ana"))
    send(FailRefund(event_id="fail-RC", occurred_at=at(170), refund_id="RC", reason="closed card"))

    assert seen == {
        "RA": ["", "requested", "approved", "issued"],
        "RB": ["", "requested", "rejected"],
        "RC": ["", "requested", "approved", "failed"],
    }
    issued = refund(pg, "RA")
    assert issued is not None
    assert (issued["decided_by"], issued["issued_at"], issued["processor_ref"]) == (
        "ana",
        at(120),
        "x1",
    )
    assert refund(pg, "RB")["decided_at"] == at(140)  # type: ignore[index]
    assert refund(pg, "RC")["failure_reason"] == "closed card"  # type: ignore[index]
    # Only the issued refund counts against the payment.
    p1 = payment(pg, "P1")
    assert p1 is not None
    assert (p1["refunded_minor"], p1["net_minor"]) == (100, 888)
    app.close()
