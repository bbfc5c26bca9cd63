"""Aggregate rules tested directly: sessions, payments, refunds, tariffs, postings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain import postings
from domain.errors import (
    MeterReadingError,
    PaymentRuleViolation,
    RefundRuleViolation,
    SessionAlreadyStoppedError,
    SessionTimelineError,
)
from domain.payment import Payment
from domain.refund import Refund
from domain.session import ChargingSession
from domain.tariff import Tariff, TariffTerms
from domain.vocabulary import PaymentStatus

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def session(terms: TariffTerms) -> ChargingSession:
    return ChargingSession.start(
        session_id="S1",
        station_id="ST",
        connector_id="1",
        customer_id="C",
        tariff_id="T1",
        tariff_version=1,
        tariff_terms=terms,
        meter_start_wh=1000,
        started_at=T0,
    )


def test_meter_stop_below_start_is_refused(eur_terms: TariffTerms) -> None:
    with pytest.raises(MeterReadingError, match="below meter start"):
        session(eur_terms).stop(meter_stop_wh=999, stopped_at=T0 + timedelta(hours=1))


def test_stop_before_start_is_refused(eur_terms: TariffTerms) -> None:
    with pytest.raises(SessionTimelineError, match="before the start"):
        session(eur_terms).stop(meter_stop_wh=2000, stopped_at=T0 - timedelta(seconds=1))


def test_charging_end_outside_the_session_is_refused(eur_terms: TariffTerms) -> None:
    with pytest.raises(SessionTimelineError, match="outside the session"):
        session(eur_terms).stop(
            meter_stop_wh=2000,
            stopped_at=T0 + timedelta(hours=1),
            charging_ended_at=T0 + timedelta(hours=2),
        )


def test_second_stop_is_refused(eur_terms: TariffTerms) -> None:
    charging = session(eur_terms)
    charging.stop(meter_stop_wh=2000, stopped_at=T0 + timedelta(hours=1))
    with pytest.raises(SessionAlreadyStoppedError, match="already stopped"):
        charging.stop(meter_stop_wh=3000, stopped_at=T0 + timedelta(hours=2))


def test_stop_emits_stopped_then_priced_with_balanced_postings(eur_terms: TariffTerms) -> None:
    charging = session(eur_terms)
    charging.stop(meter_stop_wh=21_000, stopped_at=T0 + timedelta(hours=1))
    events = charging.collect_events()
    assert [type(e).__qualname__ for e in events] == [
        "ChargingSession.Started",
        "ChargingSession.Stopped",
        "ChargingSession.Priced",
    ]
    priced = events[-1]
    assert isinstance(priced, ChargingSession.Priced)
    assert priced.total_minor == 988
    assert postings.is_balanced(priced.postings)
    assert {p["account"] for p in priced.postings} == {
        "customer_receivable",
        "charging_revenue",
        "vat_payable",
    }


def test_tariff_versions_and_the_version_in_force(eur_terms: TariffTerms) -> None:
    tariff = Tariff.publish("T1", eur_terms, T0)
    dearer = TariffTerms(currency="EUR", price_per_kwh=Decimal("0.59"), vat_rate=Decimal("0.19"))
    tariff.revise(dearer, T0 + timedelta(days=1))
    assert tariff.tariff_version == 2
    assert tariff.version_in_force_at(T0 + timedelta(hours=1)) == 1
    assert tariff.version_in_force_at(T0 + timedelta(days=2)) == 2
    assert tariff.version_in_force_at(T0 - timedelta(days=1)) == 1
    assert tariff.terms_at_version(1) == eur_terms
    assert tariff.terms == dearer


def authorised(hold: int = 1000) -> Payment:
    return Payment.authorise(
        payment_id="P1",
        session_id="S1",
        method="card",
        currency="EUR",
        hold_minor=hold,
        occurred_at=T0,
    )


def test_capture_releases_the_rest_of_the_hold() -> None:
    payment = authorised(1000)
    assert payment.capture(event_id="e", amount_minor=800, occurred_at=T0) is None
    captured = payment.collect_events()[-1]
    assert isinstance(captured, Payment.Captured)
    assert (captured.captured_minor, captured.released_minor) == (800, 200)
    assert postings.is_balanced(captured.postings)


def test_capture_above_hold_records_capture_rejected() -> None:
    payment = authorised(1000)
    reason = payment.capture(event_id="e", amount_minor=1001, occurred_at=T0)
    assert reason is not None and "exceeds the authorised hold of 1000" in reason
    rejected = payment.collect_events()[-1]
    assert isinstance(rejected, Payment.CaptureRejected)
    assert payment.status is PaymentStatus.AUTHORISED


def test_only_authorised_payments_fail_or_void() -> None:
    payment = authorised()
    payment.void(reason=None, occurred_at=T0)
    with pytest.raises(PaymentRuleViolation):
        payment.fail(reason="x", occurred_at=T0)
    with pytest.raises(PaymentRuleViolation):
        payment.void(reason=None, occurred_at=T0)


def test_reconciliation_is_recorded_once_and_in_the_same_currency_only() -> None:
    payment = authorised()
    payment.reconcile(session_id="S1", session_total_minor=500, session_currency="EUR")
    assert not payment.is_reconciled  # nothing captured yet
    payment.capture(event_id="e", amount_minor=600, occurred_at=T0)
    payment.reconcile(session_id="S1", session_total_minor=500, session_currency="GBP")
    assert payment.reconciliation_outcome == "currency_mismatch"
    payment.reconcile(session_id="S1", session_total_minor=500, session_currency="EUR")
    assert payment.overcharge_minor == 0  # the first reconciliation stands


def test_refund_budget_lives_on_the_payment() -> None:
    payment = authorised()
    with pytest.raises(RefundRuleViolation, match="not captured"):
        payment.approve_refund(refund_id="R1", amount_minor=1, reason="other")
    payment.capture(event_id="e", amount_minor=1000, occurred_at=T0)
    payment.approve_refund(refund_id="R1", amount_minor=600, reason="other")
    with pytest.raises(RefundRuleViolation, match="refundable balance of 400"):
        payment.approve_refund(refund_id="R2", amount_minor=401, reason="other")
    payment.release_refund(refund_id="R1")
    assert payment.refundable_balance_minor == 1000


def test_refund_state_machine() -> None:
    refund = Refund.request(
        refund_id="R1",
        payment_id="P1",
        session_id="S1",
        amount_minor=100,
        currency="EUR",
        reason="other",
        note=None,
        occurred_at=T0,
    )
    with pytest.raises(RefundRuleViolation, match="only an approved refund can be issued"):
        refund.issue(processor_ref=None, occurred_at=T0)
    refund.approve(decided_by="ops", note=None, occurred_at=T0)
    with pytest.raises(RefundRuleViolation):
        refund.reject(decided_by="ops", reason="late", note=None, occurred_at=T0)
    refund.issue(processor_ref="re_1", occurred_at=T0)
    issued = refund.collect_events()[-1]
    assert isinstance(issued, Refund.Issued)
    assert postings.is_balanced(issued.postings)
    assert {p["account"] for p in issued.postings} == {"refunds", "processor_clearing"}


def test_zero_amount_postings_are_left_out() -> None:
    assert postings.session_priced(0, 0, 0, "EUR") == []
    assert postings.hold_placed(0, "EUR") == []
    assert postings.is_balanced([])
