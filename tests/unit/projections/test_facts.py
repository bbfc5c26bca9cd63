"""The pure projection core: which facts each ledger event establishes, and folding."""

from __future__ import annotations

import inspect
from decimal import Decimal

from eventsourcing.domain import Aggregate, CanMutateAggregate

import domain.idempotency
import domain.payment
import domain.refund
import domain.roaming_cdr
import domain.roaming_location
import domain.roaming_tariff
import domain.session
import domain.settlement
import domain.tariff
from domain.application import BillingApplication
from domain.ids import session_aggregate_id
from projections.facts import HANDLED, IGNORED, Entity, Fact, LedgerEvent, facts_of, kwh
from projections.fold import fold
from projections.runner import LedgerSource
from tests.unit.projections.scenario import at, build_ledger


def ledger_events() -> list[LedgerEvent]:
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(app)
    return LedgerSource.of(app).read_after(0, 10_000)


def by_type(events: list[LedgerEvent], qualname: str) -> list[LedgerEvent]:
    return [e for e in events if type(e.event).__qualname__ == qualname]


def test_every_domain_event_is_handled_or_knowingly_ignored() -> None:
    modules = [
        domain.session,
        domain.payment,
        domain.refund,
        domain.tariff,
        domain.settlement,
        domain.idempotency,
        domain.roaming_cdr,
        domain.roaming_tariff,
        domain.roaming_location,
    ]
    event_types = {
        member
        for module in modules
        for _, aggregate in inspect.getmembers(module, inspect.isclass)
        if issubclass(aggregate, Aggregate) and aggregate is not Aggregate
        for _, member in inspect.getmembers(aggregate, inspect.isclass)
        # The library's per-aggregate base classes (Event, Created) are never stored.
        if issubclass(member, CanMutateAggregate)
        and member.__qualname__.startswith(aggregate.__name__)
        and member.__name__ not in {"Event", "Created"}
    }
    assert event_types, "found no domain events"
    assert event_types == HANDLED | IGNORED
    assert not HANDLED & IGNORED


def test_a_priced_session_gives_its_row_line_items_and_postings() -> None:
    priced = by_type(ledger_events(), "ChargingSession.Priced")[0]
    facts = facts_of(priced)
    session = [f for f in facts if f.entity is Entity.SESSION]
    assert len(session) == 1
    assert session[0].key == (str(session_aggregate_id("S1")),)
    assert session[0].values["total_minor"] == 988
    assert session[0].values["energy_kwh"] == Decimal("20.000")
    items = [f for f in facts if f.entity is Entity.LINE_ITEM]
    assert [f.values["component"] for f in items] == ["energy", "time", "session_fee", "idle_fee"]
    assert sum(f.values["amount_minor"] for f in items) == 830
    postings = [f for f in facts if f.entity is Entity.POSTING]
    assert {f.key for f in postings} == {(priced.notification_id, n) for n in (1, 2, 3)}
    debits = sum(f.values["amount_minor"] for f in postings if f.values["direction"] == "debit")
    credits = sum(f.values["amount_minor"] for f in postings if f.values["direction"] == "credit")
    assert debits == credits == 988


def test_a_payment_references_its_session_by_the_session_aggregate_id() -> None:
    authorised = by_type(ledger_events(), "Payment.Authorised")[0]
    (payment, *_) = facts_of(authorised)
    assert payment.values["session_key"] == str(session_aggregate_id("S1"))
    assert payment.values["authorised_minor"] == 2000
    assert payment.values["created_at"] == at(0)


def test_a_system_rejection_is_automatic() -> None:
    rejected = by_type(ledger_events(), "Refund.Rejected")
    values = [facts_of(e)[0].values for e in rejected]
    assert [(v["decided_by"], v["automatic"]) for v in values] == [
        ("agent-9", False),
        ("system", True),
    ]


def test_kwh_is_exact() -> None:
    assert kwh(1) == Decimal("0.001")
    assert kwh(123456789) == Decimal("123456.789")


def test_fold_lets_later_values_win_but_never_clears() -> None:
    facts = [
        Fact(Entity.REFUND, ("r",), {"status": "requested", "note": "hi", "currency": None}),
        Fact(Entity.REFUND, ("r",), {"status": "approved", "note": None}),
        Fact(Entity.REFUND, ("r",), {"currency": "EUR"}),
        Fact(Entity.PAYMENT, ("p",), {"status": "captured"}),
    ]
    folded = fold(facts, [Entity.REFUND])
    assert folded == {
        Entity.REFUND: {("r",): {"status": "approved", "note": "hi", "currency": "EUR"}}
    }


def test_a_rejected_message_is_a_fact_keyed_by_its_event_id_and_an_applied_one_is_not() -> None:
    processed = by_type(ledger_events(), "ProcessedMessage.Recorded")
    rejected = [f for e in processed for f in facts_of(e)]
    assert {f.entity for f in rejected} == {Entity.REJECTED_MESSAGE}
    outcomes = [e.event.outcome for e in processed]
    assert len(rejected) == outcomes.count("rejected") > 0
    assert all(f.values["reason"] for f in rejected)
