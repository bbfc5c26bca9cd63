"""BillingApplication end to end on the library's POPO and SQLite persistence modules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from domain.application import BillingApplication
from domain.commands import (
    ApproveRefund,
    AuthorisePayment,
    CapturePayment,
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
from domain.errors import IdempotencyConflictError, InvalidValueError, UnknownAggregateError
from domain.payment import ReconciliationOutcome
from domain.policy import RefundPolicy
from domain.postings import is_balanced
from domain.results import CommandResult, Outcome, RecordedEvent
from domain.vocabulary import PaymentStatus, RefundStatus

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def make_env(backend: str, tmp_path: Path) -> dict[str, str]:
    if backend == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "ledger.sqlite"),
        }
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture(params=["popo", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(backend: str, tmp_path: Path) -> Iterator[BillingApplication]:
    application = BillingApplication(env=make_env(backend, tmp_path))
    yield application
    application.close()


class Upstream:
    """Builds upstream commands with fresh event ids."""

    def __init__(self) -> None:
        self.counter = 0

    def next_id(self) -> str:
        self.counter += 1
        return f"evt-{self.counter}"

    def tariff(self, tariff_id: str = "T1", **fields: object) -> PublishTariff:
        values: dict[str, object] = {
            "tariff_id": tariff_id,
            "currency": "EUR",
            "price_per_kwh": Decimal("0.39"),
            "vat_rate": Decimal("0.19"),
            "session_fee": 50,
        }
        values.update(fields)
        return PublishTariff(
            event_id=self.next_id(),
            occurred_at=T0 - timedelta(days=1),
            **values,  # type: ignore[arg-type]
        )

    def start(self, session_id: str = "S1", meter_start_wh: int = 1000) -> StartSession:
        return StartSession(
            event_id=self.next_id(),
            occurred_at=T0,
            session_id=session_id,
            station_id="ST-1",
            connector_id="1",
            customer_id="C-1",
            tariff_id="T1",
            meter_start_wh=meter_start_wh,
        )

    def stop(self, session_id: str = "S1", meter_stop_wh: int = 21_000) -> StopSession:
        return StopSession(
            event_id=self.next_id(),
            occurred_at=T0 + timedelta(hours=1),
            session_id=session_id,
            meter_stop_wh=meter_stop_wh,
        )

    def authorise(self, payment_id: str = "P1", amount: int = 5000) -> AuthorisePayment:
        return AuthorisePayment(
            event_id=self.next_id(),
            occurred_at=T0,
            payment_id=payment_id,
            session_id="S1",
            amount_minor=amount,
            currency="EUR",
            method="card",
        )

    def capture(self, amount: int, payment_id: str = "P1") -> CapturePayment:
        return CapturePayment(
            event_id=self.next_id(),
            occurred_at=T0 + timedelta(hours=1),
            payment_id=payment_id,
            amount_minor=amount,
        )

    def refund(self, refund_id: str, amount: int, reason: str = "other") -> RequestRefund:
        return RequestRefund(
            event_id=self.next_id(),
            occurred_at=T0 + timedelta(hours=2),
            refund_id=refund_id,
            payment_id="P1",
            amount_minor=amount,
            reason=reason,
        )


@pytest.fixture
def up() -> Upstream:
    return Upstream()


# 20 kWh x 0.39 = 7.80 + 0.50 fee = 8.30; VAT 19% = 1.577 -> 1.58; total 9.88
SESSION_TOTAL = 988


def priced_and_captured(app: BillingApplication, up: Upstream, captured: int) -> None:
    for command in (up.tariff(), up.start(), up.stop(), up.authorise(), up.capture(captured)):
        assert app.handle(command).outcome is Outcome.APPLIED


def all_postings(app: BillingApplication) -> list[dict[str, object]]:
    postings: list[dict[str, object]] = []
    for notification in app.recorder.select_notifications(start=1, limit=10_000):
        event = app.mapper.to_domain_event(notification)
        postings.extend(getattr(event, "postings", []))
    return postings


def test_happy_path_prices_captures_reconciles_and_balances(
    app: BillingApplication, up: Upstream
) -> None:
    priced_and_captured(app, up, SESSION_TOTAL)
    session = app.get_session("S1")
    assert session.priced is not None
    assert session.priced.total_minor == SESSION_TOTAL
    payment = app.get_payment("P1")
    assert payment.status is PaymentStatus.CAPTURED
    assert payment.reconciliation_outcome is ReconciliationOutcome.EXACT
    postings = all_postings(app)
    assert postings and is_balanced(postings)


def test_same_event_id_same_content_is_a_duplicate(app: BillingApplication, up: Upstream) -> None:
    command = up.tariff()
    first = app.handle(command)
    again = app.handle(command)
    assert first.outcome is Outcome.APPLIED
    assert "Tariff.Published" in first.event_names
    assert again.outcome is Outcome.DUPLICATE
    assert again.events == ()
    assert again.first_outcome is Outcome.APPLIED
    assert app.get_tariff("T1").tariff_version == 1


def test_same_event_id_different_content_is_an_error(app: BillingApplication, up: Upstream) -> None:
    command = up.tariff()
    app.handle(command)
    changed = PublishTariff(
        event_id=command.event_id,
        occurred_at=command.occurred_at,
        tariff_id="T1",
        currency="EUR",
        price_per_kwh=Decimal("0.49"),
        vat_rate=Decimal("0.19"),
    )
    with pytest.raises(IdempotencyConflictError, match="different"):
        app.handle(changed)


def test_equal_decimals_spelled_differently_are_the_same_content(
    app: BillingApplication, up: Upstream
) -> None:
    command = up.tariff(price_per_kwh=Decimal("0.390"))
    app.handle(command)
    respelled = up.tariff(price_per_kwh=Decimal("0.39"))
    same_id = PublishTariff(**{**respelled.__dict__, "event_id": command.event_id})
    assert app.handle(same_id).outcome is Outcome.DUPLICATE


def test_duplicate_of_a_rejection_reports_the_first_reason(
    app: BillingApplication, up: Upstream
) -> None:
    command = up.start()  # no tariff yet
    first = app.handle(command)
    assert first.outcome is Outcome.REJECTED
    assert first.rejection_reason is not None and "unknown tariff" in first.rejection_reason
    again = app.handle(command)
    assert again.outcome is Outcome.DUPLICATE
    assert again.first_outcome is Outcome.REJECTED
    assert again.rejection_reason == first.rejection_reason


def test_payment_captured_before_session_priced_is_reconciled_at_pricing(
    app: BillingApplication, up: Upstream
) -> None:
    app.handle(up.tariff())
    app.handle(up.authorise())
    captured = app.handle(up.capture(1500))
    assert "Payment.Reconciled" not in captured.event_names
    app.handle(up.start())
    stopped = app.handle(up.stop())
    assert "Payment.Reconciled" in stopped.event_names
    payment = app.get_payment("P1")
    assert payment.reconciliation_outcome is ReconciliationOutcome.OVERCHARGE
    assert payment.discrepancy_minor == 1500 - SESSION_TOTAL


def test_capture_after_pricing_records_an_undercharge(
    app: BillingApplication, up: Upstream
) -> None:
    priced_and_captured(app, up, 900)
    payment = app.get_payment("P1")
    assert payment.reconciliation_outcome is ReconciliationOutcome.UNDERCHARGE
    assert payment.discrepancy_minor == 900 - SESSION_TOTAL


def test_capture_above_hold_is_recorded_as_a_rejection(
    app: BillingApplication, up: Upstream
) -> None:
    app.handle(up.authorise(amount=1000))
    result = app.handle(up.capture(1001))
    assert result.outcome is Outcome.REJECTED
    assert result.rejection_reason is not None and "exceeds the authorised hold" in (
        result.rejection_reason
    )
    assert "Payment.CaptureRejected" in result.event_names
    assert app.get_payment("P1").status is PaymentStatus.AUTHORISED


def test_unknown_ids_are_rejections_not_exceptions(app: BillingApplication, up: Upstream) -> None:
    assert app.handle(up.capture(100)).outcome is Outcome.REJECTED
    assert app.handle(up.stop()).outcome is Outcome.REJECTED
    for command in (
        ApproveRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R?", decided_by="ops"),
        RejectRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R?", decided_by="ops"),
        IssueRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R?"),
        FailRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R?", reason="x"),
        VoidPayment(event_id=up.next_id(), occurred_at=T0, payment_id="P?"),
    ):
        result = app.handle(command)
        assert result.outcome is Outcome.REJECTED
        assert result.event_names == ("ProcessedMessage.Recorded",)
    with pytest.raises(UnknownAggregateError):
        app.get_payment("P?")


def test_refund_above_refundable_balance_is_recorded_and_auto_rejected(
    app: BillingApplication, up: Upstream
) -> None:
    priced_and_captured(app, up, SESSION_TOTAL)
    result = app.handle(up.refund("R1", SESSION_TOTAL + 1))
    assert result.outcome is Outcome.REJECTED
    assert result.event_names[:2] == ("Refund.Requested", "Refund.Rejected")
    refund = app.get_refund("R1")
    assert refund.status is RefundStatus.REJECTED
    assert refund.decided_by == "system"
    assert refund.rejection_reason is not None and "refundable balance" in refund.rejection_reason


def test_refund_of_unknown_payment_is_recorded_and_auto_rejected(
    app: BillingApplication, up: Upstream
) -> None:
    result = app.handle(up.refund("R1", 100))
    assert result.outcome is Outcome.REJECTED
    assert app.get_refund("R1").status is RefundStatus.REJECTED


def test_failed_session_refund_is_auto_approved(app: BillingApplication, up: Upstream) -> None:
    for command in (
        up.tariff(),
        up.start(meter_start_wh=5000),
        up.stop(meter_stop_wh=5000),  # 0 Wh delivered; the fee 0.50 + VAT 0.10 = 0.60
        up.authorise(),
        up.capture(60),
    ):
        app.handle(command)
    result = app.handle(up.refund("R1", 60, reason="failed_session"))
    assert result.outcome is Outcome.APPLIED
    assert "Refund.Approved" in result.event_names
    assert "Payment.RefundApproved" in result.event_names
    assert app.get_refund("R1").decided_by == "system"
    assert app.get_payment("P1").refundable_balance_minor == 0


def test_proven_overcharge_refund_is_auto_approved_up_to_the_overcharge(
    app: BillingApplication, up: Upstream
) -> None:
    priced_and_captured(app, up, 1500)  # overcharge 512
    too_much = app.handle(up.refund("R1", 513, reason="overcharge"))
    assert too_much.outcome is Outcome.APPLIED
    assert app.get_refund("R1").status is RefundStatus.REQUESTED  # a person decides
    exact = app.handle(up.refund("R2", 512, reason="overcharge"))
    assert app.get_refund("R2").status is RefundStatus.APPROVED
    assert "Refund.Approved" in exact.event_names
    # The overcharge is used up: a further overcharge refund waits for a person.
    app.handle(up.refund("R3", 1, reason="overcharge"))
    assert app.get_refund("R3").status is RefundStatus.REQUESTED


def test_auto_approval_can_be_switched_off(backend: str, tmp_path: Path, up: Upstream) -> None:
    policy = RefundPolicy(auto_approve_failed_sessions=False, auto_approve_proven_overcharge=False)
    app = BillingApplication(env=make_env(backend, tmp_path), refund_policy=policy)
    priced_and_captured(app, up, 1500)
    app.handle(up.refund("R1", 100, reason="overcharge"))
    assert app.get_refund("R1").status is RefundStatus.REQUESTED
    app.close()


def test_manual_refund_lifecycle_and_balance(app: BillingApplication, up: Upstream) -> None:
    priced_and_captured(app, up, SESSION_TOTAL)
    app.handle(up.refund("R1", 300, reason="service_quality"))
    approved = app.handle(
        ApproveRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R1", decided_by="ops")
    )
    assert approved.event_names[:2] == ("Refund.Approved", "Payment.RefundApproved")
    assert app.get_payment("P1").refundable_balance_minor == SESSION_TOTAL - 300
    issued = app.handle(
        IssueRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R1", processor_ref="re_1")
    )
    assert issued.outcome is Outcome.APPLIED
    assert app.get_refund("R1").status is RefundStatus.ISSUED
    # A second refund, approved then failed, releases its amount again.
    app.handle(up.refund("R2", 600, reason="duplicate"))
    app.handle(
        ApproveRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R2", decided_by="ops")
    )
    assert app.get_payment("P1").refundable_balance_minor == SESSION_TOTAL - 900
    failed = app.handle(
        FailRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R2", reason="card closed")
    )
    assert "Payment.RefundReleased" in failed.event_names
    assert app.get_payment("P1").refundable_balance_minor == SESSION_TOTAL - 300
    # Issuing a failed refund breaks a rule: recorded on the refund, reported rejected.
    again = app.handle(IssueRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R2"))
    assert again.outcome is Outcome.REJECTED
    assert "Refund.CommandRejected" in again.event_names
    assert is_balanced(all_postings(app))


def test_approval_that_no_longer_fits_the_balance_is_refused_by_the_system(
    app: BillingApplication, up: Upstream
) -> None:
    priced_and_captured(app, up, SESSION_TOTAL)
    app.handle(up.refund("R1", 700))
    app.handle(up.refund("R2", 700))
    ok = app.handle(
        ApproveRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R1", decided_by="a")
    )
    assert ok.outcome is Outcome.APPLIED
    late = app.handle(
        ApproveRefund(event_id=up.next_id(), occurred_at=T0, refund_id="R2", decided_by="b")
    )
    assert late.outcome is Outcome.REJECTED
    assert app.get_refund("R2").status is RefundStatus.REJECTED
    assert app.get_payment("P1").refundable_balance_minor == SESSION_TOTAL - 700


def test_refund_rejected_by_a_person(app: BillingApplication, up: Upstream) -> None:
    priced_and_captured(app, up, SESSION_TOTAL)
    app.handle(up.refund("R1", 100))
    result = app.handle(
        RejectRefund(
            event_id=up.next_id(), occurred_at=T0, refund_id="R1", decided_by="ops", note="no"
        )
    )
    assert result.event_names[0] == "Refund.Rejected"
    refund = app.get_refund("R1")
    assert (refund.status, refund.decided_by, refund.rejection_reason) == (
        RefundStatus.REJECTED,
        "ops",
        "no",
    )


def test_declined_preauthorisation_and_failure_after_authorisation(
    app: BillingApplication, up: Upstream
) -> None:
    declined = app.handle(
        FailPayment(event_id=up.next_id(), occurred_at=T0, payment_id="P9", reason="do not honour")
    )
    assert declined.event_names[0] == "Payment.Declined"
    assert app.get_payment("P9").status is PaymentStatus.DECLINED
    app.handle(up.authorise())
    failed = app.handle(
        FailPayment(event_id=up.next_id(), occurred_at=T0, payment_id="P1", reason="expired")
    )
    assert failed.event_names[0] == "Payment.Failed"
    assert app.get_payment("P1").status is PaymentStatus.FAILED
    assert app.handle(up.capture(10)).outcome is Outcome.REJECTED
    assert is_balanced(all_postings(app))


def test_void_releases_the_hold(app: BillingApplication, up: Upstream) -> None:
    app.handle(up.authorise())
    result = app.handle(VoidPayment(event_id=up.next_id(), occurred_at=T0, payment_id="P1"))
    assert result.event_names[0] == "Payment.Voided"
    postings = all_postings(app)
    held = sum(
        p["amount_minor"] if p["direction"] == "debit" else -p["amount_minor"]  # type: ignore[operator]
        for p in postings
        if p["account"] == "authorisation_holds"
    )
    assert held == 0


def test_session_stop_rules_are_recorded_rejections(app: BillingApplication, up: Upstream) -> None:
    app.handle(up.tariff())
    app.handle(up.start(meter_start_wh=10_000))
    below = app.handle(up.stop(meter_stop_wh=9_999))
    assert below.outcome is Outcome.REJECTED
    assert below.event_names[0] == "ChargingSession.CommandRejected"
    assert app.handle(up.stop(meter_stop_wh=12_000)).outcome is Outcome.APPLIED
    second = app.handle(up.stop(meter_stop_wh=13_000))
    assert second.outcome is Outcome.REJECTED
    assert second.rejection_reason is not None and "already stopped" in second.rejection_reason


def test_later_tariff_revision_never_reprices_an_old_session(
    app: BillingApplication, up: Upstream
) -> None:
    app.handle(up.tariff())
    app.handle(up.start())
    revision = PublishTariff(
        event_id=up.next_id(),
        occurred_at=T0 + timedelta(minutes=5),
        tariff_id="T1",
        currency="EUR",
        price_per_kwh=Decimal("0.99"),
        vat_rate=Decimal("0.19"),
    )
    assert app.handle(revision).event_names[0] == "Tariff.Revised"
    app.handle(up.stop())
    session = app.get_session("S1")
    assert session.tariff_version == 1
    assert session.priced is not None and session.priced.total_minor == SESSION_TOTAL
    assert app.get_tariff("T1").tariff_version == 2


def test_a_lost_race_is_retried_on_fresh_state(app: BillingApplication, up: Upstream) -> None:
    app.handle(up.authorise())
    real_save = app.save
    calls = {"n": 0}

    def racing_save(*objs: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            # Another writer voids the payment just before our save.
            other = app.get_payment("P1")
            other.void(reason="race", occurred_at=T0)
            real_save(other)
            raise IntegrityError("conflict")
        return real_save(*objs, **kwargs)  # type: ignore[arg-type]

    app.save = racing_save  # type: ignore[method-assign]
    result = app.handle(up.capture(100))
    assert calls["n"] == 2
    assert result.outcome is Outcome.REJECTED  # decided again on the voided payment
    assert app.get_payment("P1").status is PaymentStatus.VOIDED


def test_malformed_values_are_value_errors() -> None:
    with pytest.raises(InvalidValueError):
        CapturePayment(event_id="e", occurred_at=T0, payment_id="P", amount_minor=-1)
    with pytest.raises(ValueError, match="offset"):
        CapturePayment(
            event_id="e", occurred_at=datetime(2024, 1, 1), payment_id="P", amount_minor=1
        )


@pytest.mark.parametrize("priced_first", [True, False])
def test_a_second_payment_capturing_the_whole_total_again_is_an_overcharge(
    app: BillingApplication, up: Upstream, priced_first: bool
) -> None:
    """Each capture is reconciled against what earlier captures left unpaid."""
    session = [up.tariff(), up.start(), up.stop()]
    payments = [
        up.authorise("P1"),
        up.capture(SESSION_TOTAL, "P1"),
        up.authorise("P2"),
        up.capture(SESSION_TOTAL, "P2"),
    ]
    for command in session + payments if priced_first else payments + session:
        app.handle(command)
    first, second = app.get_payment("P1"), app.get_payment("P2")
    assert first.reconciliation_outcome is ReconciliationOutcome.EXACT
    assert second.reconciliation_outcome is ReconciliationOutcome.OVERCHARGE
    assert second.discrepancy_minor == SESSION_TOTAL


def test_results_are_the_objects_their_constructors_make(
    app: BillingApplication, up: Upstream
) -> None:
    # Results and their events are filled without their generated __init__ (as the batch
    # path makes them): equal, hashing and printing alike, for applied and rejected ones.
    commands = [up.tariff(), up.start(), up.stop(), up.stop(), up.authorise(), up.capture(988)]
    results = [*app.handle_batch(commands), app.handle(up.refund("R1", 5))]
    assert {result.outcome for result in results} >= {Outcome.APPLIED, Outcome.REJECTED}  # type: ignore[union-attr]
    for result in results:
        assert isinstance(result, CommandResult)
        events = tuple(RecordedEvent(**vars(event)) for event in result.events)
        rebuilt = CommandResult(**{**vars(result), "events": events})
        assert list(vars(rebuilt)) == list(vars(result))
        for event, made_event in zip(events, result.events, strict=True):
            assert list(vars(event)) == list(vars(made_event))
        assert rebuilt == result
        assert hash(rebuilt) == hash(result)
        assert repr(rebuilt) == repr(result)
