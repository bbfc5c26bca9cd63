"""Each handler of projections/facts.py declares the entities its facts may hold
(``ENTITIES_OF``, which a rebuild worker uses to leave undecoded the events its group takes
nothing from): over real ledgers (the golden one, generated traffic with OCPI) and for the
types these lack, no event makes a fact the declaration does not name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from domain.application import BillingApplication
from domain.idempotency import ProcessedMessage
from domain.payment import Payment
from domain.refund import Refund
from domain.session import ChargingSession
from domain.tariff import Tariff
from projections.entities import Entity, LedgerEvent
from projections.facts import ENTITIES_OF, HANDLED, IGNORED, STATE_HOLDS, facts_of_batch
from projections.runner import LedgerSource
from tests.unit.projections.test_event_decoder import traffic
from tests.unit.store.test_fast_json import golden


def decoded(source: LedgerSource, stored: list[StoredEvent]) -> list[LedgerEvent]:
    """``stored`` as ``source`` decodes it, numbered from 1."""
    return source.events_from(
        0,
        (
            (number, e.originator_id, e.originator_version, e.topic, e.state)
            for number, e in enumerate(stored, start=1)
        ),
    )


def test_every_known_type_is_declared_and_the_ignored_make_nothing() -> None:
    assert set(ENTITIES_OF) == HANDLED | IGNORED
    assert all(ENTITIES_OF[event_type] == frozenset() for event_type in IGNORED)
    assert all(ENTITIES_OF[event_type] for event_type in HANDLED)


def test_no_event_of_real_ledgers_makes_facts_its_type_does_not_declare(
    application: BillingApplication,
) -> None:
    stored: list[StoredEvent] = [*golden(), *traffic(application)]
    events = decoded(LedgerSource.of(application), stored)
    seen: set[type] = set()
    for ledger_event in events:
        seen.add(type(ledger_event.event))
        made = {fact.entity for fact in facts_of_batch([ledger_event])}
        assert made <= ENTITIES_OF[type(ledger_event.event)], type(ledger_event.event)
    # Not vacuous: most handled types are in these ledgers, rejected messages too.
    assert ProcessedMessage.Recorded in seen
    assert len(seen & HANDLED) >= len(HANDLED) // 2, sorted(t.__qualname__ for t in seen)
    assert any(
        fact.entity is Entity.REJECTED_MESSAGE
        for ledger_event in events
        if type(ledger_event.event) is ProcessedMessage.Recorded
        for fact in facts_of_batch([ledger_event])
    )


def _made_of(event_type: type, **state: Any) -> set[Entity]:
    event: Any = object.__new__(event_type)
    object.__setattr__(event, "__dict__", {"originator_id": uuid4(), **state})
    return {fact.entity for fact in facts_of_batch([LedgerEvent(1, event)])}


def test_the_types_these_ledgers_lack_make_what_they_declare() -> None:
    now = datetime.now(UTC)
    rejection = {"event_id": "e-1", "reason": "no", "occurred_at": now, "message_type": "x"}
    for event_type in [
        ChargingSession.CommandRejected,
        Payment.CommandRejected,
        Refund.CommandRejected,
    ]:
        assert _made_of(event_type, **rejection) == ENTITIES_OF[event_type]
    terms = {
        "currency": "EUR",
        "price_per_kwh": "0.30",
        "price_per_minute": "0",
        "session_fee_minor": 0,
        "idle_fee_per_minute": "0",
        "vat_rate": "0.2",
        "timezone": "UTC",
    }
    made = _made_of(Tariff.Revised, terms=terms, tariff_version=2, occurred_at=now)
    assert made == ENTITIES_OF[Tariff.Revised]


def test_no_event_of_real_ledgers_makes_a_fact_without_its_types_state_text(
    application: BillingApplication,
) -> None:
    """``STATE_HOLDS``: a rebuild worker leaves a state without its type's text undecoded."""
    stored: list[StoredEvent] = [*golden(), *traffic(application)]
    events = decoded(LedgerSource.of(application), stored)
    lacking = with_facts = 0
    for record, ledger_event in zip(stored, events, strict=True):
        holds = STATE_HOLDS.get(type(ledger_event.event))
        if holds is None:
            continue
        made = facts_of_batch([ledger_event])
        if holds not in record.state:
            lacking += 1
            assert made == [], record.state
        with_facts += bool(made)
    # Not vacuous: both kinds are in these ledgers.
    assert lacking and with_facts
