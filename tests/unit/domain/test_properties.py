"""Property tests: pricing adds up, refunds never overdraw a payment, postings balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import RefundRuleViolation
from domain.money import round_half_up
from domain.payment import Payment
from domain.postings import is_balanced
from domain.pricing import ENERGY, allocate_largest_remainder, price_session
from domain.refund import Refund
from domain.session import ChargingSession
from domain.tariff import EnergyWindow, TariffTerms
from domain.vocabulary import RefundStatus

T0 = datetime(2024, 3, 30, 18, 0, tzinfo=UTC)  # the night before a DST change in Europe

prices = st.decimals(min_value=0, max_value=5, places=4)
windowed = st.booleans()


@st.composite
def tariffs(draw: st.DrawFn) -> TariffTerms:
    windows: tuple[EnergyWindow, ...] = ()
    if draw(windowed):
        windows = (
            EnergyWindow("night", "22:00", "06:00", draw(prices)),  # type: ignore[arg-type]
            EnergyWindow("peak", "17:00", "21:00", draw(prices)),  # type: ignore[arg-type]
        )
    return TariffTerms(
        currency=draw(st.sampled_from(["EUR", "JPY", "BHD"])),
        price_per_kwh=draw(prices),
        vat_rate=draw(st.decimals(min_value=0, max_value=Decimal("0.3"), places=3)),
        price_per_minute=draw(prices),
        session_fee_minor=draw(st.integers(0, 1000)),
        idle_fee_per_minute=draw(prices),
        idle_grace_minutes=draw(st.integers(0, 60)),
        timezone="Europe/Berlin",
        energy_windows=windows,
    )


@settings(max_examples=200, deadline=None)
@given(
    terms=tariffs(),
    start_offset=st.integers(0, 48 * 3600),
    charging=st.integers(0, 30 * 3600),
    idle=st.integers(0, 5 * 3600),
    wh=st.integers(0, 200_000),
)
def test_total_is_the_sum_of_rounded_line_items_plus_vat(
    terms: TariffTerms, start_offset: int, charging: int, idle: int, wh: int
) -> None:
    start = T0 + timedelta(seconds=start_offset)
    ended = start + timedelta(seconds=charging)
    priced = price_session(
        terms,
        started_at=start,
        stopped_at=ended + timedelta(seconds=idle),
        charging_ended_at=ended,
        meter_start_wh=1000,
        meter_stop_wh=1000 + wh,
    )
    assert priced.subtotal_minor == sum(item.amount_minor for item in priced.line_items)
    assert priced.vat_minor == round_half_up(priced.subtotal_minor * Fraction(terms.vat_rate))
    assert priced.total_minor == priced.subtotal_minor + priced.vat_minor
    energy_items = [item for item in priced.line_items if item.component == ENERGY]
    assert sum(item.base_quantity for item in energy_items) == wh
    assert priced.charging_seconds == charging
    assert priced.billable_idle_seconds == max(0, idle - terms.idle_grace_minutes * 60)


@given(total=st.integers(0, 10**9), weights=st.lists(st.integers(0, 10**6), min_size=1))
def test_largest_remainder_sums_exactly(total: int, weights: list[int]) -> None:
    parts = allocate_largest_remainder(total, weights)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)


actions = st.lists(
    st.tuples(
        st.sampled_from(["request", "approve", "issue", "fail", "reject"]),
        st.integers(1, 3000),
        st.integers(0, 5),
    ),
    max_size=40,
)


def collect_postings(*aggregates: Any) -> list[dict[str, Any]]:
    postings: list[dict[str, Any]] = []
    for aggregate in aggregates:
        for event in aggregate.collect_events():
            postings.extend(getattr(event, "postings", []))
    return postings


@settings(max_examples=200, deadline=None)
@given(
    hold=st.integers(0, 5000),
    capture=st.integers(0, 6000),
    total=st.integers(0, 6000),
    steps=actions,
)
def test_refundable_balance_never_negative_and_postings_balance(
    hold: int, capture: int, total: int, steps: list[tuple[str, int, int]]
) -> None:
    payment = Payment.authorise(
        payment_id="P",
        session_id="S",
        method="card",
        currency="EUR",
        hold_minor=hold,
        occurred_at=T0,
    )
    payment.capture(event_id="c", amount_minor=capture, occurred_at=T0)
    payment.reconcile(session_id="S", session_total_minor=total, session_currency="EUR")
    refunds: dict[int, Refund] = {}
    for action, amount, slot in steps:
        refund = refunds.get(slot)
        if action == "request" and refund is None:
            refunds[slot] = Refund.request(
                refund_id=f"R{slot}",
                payment_id="P",
                session_id="S",
                amount_minor=amount,
                currency="EUR",
                reason="other",
                note=None,
                occurred_at=T0,
            )
        elif refund is None:
            continue
        elif action == "approve" and refund.status is RefundStatus.REQUESTED:
            try:
                payment.approve_refund(
                    refund_id=refund.refund_id, amount_minor=refund.amount_minor, reason="other"
                )
            except RefundRuleViolation:
                refund.reject(decided_by="system", reason="balance", note=None, occurred_at=T0)
            else:
                refund.approve(decided_by="ops", note=None, occurred_at=T0)
        elif action == "issue" and refund.status is RefundStatus.APPROVED:
            refund.issue(processor_ref=None, occurred_at=T0)
        elif action == "fail" and refund.status is RefundStatus.APPROVED:
            refund.fail(reason="x", occurred_at=T0)
            payment.release_refund(refund_id=refund.refund_id)
        elif action == "reject" and refund.status is RefundStatus.REQUESTED:
            refund.reject(decided_by="ops", reason="no", note=None, occurred_at=T0)
        assert payment.refundable_balance_minor >= 0
    committed = sum(
        r.amount_minor
        for r in refunds.values()
        if r.status in (RefundStatus.APPROVED, RefundStatus.ISSUED)
    )
    assert committed == payment.refunds_committed_minor
    assert committed <= payment.captured_minor
    assert is_balanced(collect_postings(payment, *refunds.values()))


@settings(max_examples=100, deadline=None)
@given(terms=tariffs(), wh=st.integers(0, 100_000), minutes=st.integers(0, 600))
def test_session_pricing_postings_balance(terms: TariffTerms, wh: int, minutes: int) -> None:
    session = ChargingSession.start(
        session_id="S",
        station_id="ST",
        connector_id="1",
        customer_id="C",
        tariff_id="T",
        tariff_version=1,
        tariff_terms=terms,
        meter_start_wh=0,
        started_at=T0,
    )
    session.stop(meter_stop_wh=wh, stopped_at=T0 + timedelta(minutes=minutes))
    assert is_balanced(collect_postings(session))
