"""A rebuild worker decodes only the events its group's read models take facts from
(replay/group_decoder.py): over real ledgers (the golden one, generated traffic with OCPI,
the projection scenario), the table of what each type's facts may hold is never short, and
a group's rows are the same as with every event decoded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain.application import BillingApplication
from domain.idempotency import ProcessedMessage
from domain.payment import Payment
from domain.refund import Refund
from domain.session import ChargingSession
from domain.tariff import Tariff
from projections.analytics import Analytics
from projections.entities import Entity, LedgerEvent
from projections.facts import IGNORED, facts_of_batch
from projections.fold import fold
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource
from replay.group_decoder import FACT_ENTITIES, PLACEHOLDER, GroupDecoder
from tests.unit.projections.test_event_decoder import traffic
from tests.unit.store.test_fast_json import golden

VIEWS = {*PaymentHistory.entities, *RefundStatusView.entities}


def _events(application: BillingApplication, stored: list[Any], decoder: Any) -> list[Any]:
    source = LedgerSource.of(application)
    source.decoder = decoder
    return source.events_from(
        0,
        (
            (number, e.originator_id, e.originator_version, e.topic, e.state)
            for number, e in enumerate(stored, start=1)
        ),
    )


def test_no_type_makes_facts_the_table_does_not_name(application: BillingApplication) -> None:
    stored: list[StoredEvent] = [*golden(), *traffic(application)]
    events = _events(application, stored, LedgerSource.of(application).decoder)
    seen: set[type] = set()
    for ledger_event in events:
        made = FACT_ENTITIES.get(type(ledger_event.event))
        if made is not None:
            seen.add(type(ledger_event.event))
            assert {fact.entity for fact in facts_of_batch([ledger_event])} <= made
    # Not vacuous: most of the table's types are in these ledgers (rejected messages too).
    assert ProcessedMessage.Recorded in seen
    assert len(seen - IGNORED) >= 3, sorted(t.__qualname__ for t in seen)
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


def test_the_types_these_ledgers_lack_make_what_the_table_says() -> None:
    now = datetime.now(UTC)
    rejection = {"event_id": "e-1", "reason": "no", "occurred_at": now, "message_type": "x"}
    for event_type in [
        ChargingSession.CommandRejected,
        Payment.CommandRejected,
        Refund.CommandRejected,
    ]:
        assert _made_of(event_type, **rejection) == FACT_ENTITIES[event_type]
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
    assert made == FACT_ENTITIES[Tariff.Revised]


@pytest.mark.parametrize("entities", [VIEWS, set(Analytics.entities)], ids=["views", "analytics"])
def test_a_group_gets_the_rows_it_gets_with_every_event_decoded(
    application: BillingApplication, entities: set[Entity]
) -> None:
    stored = [*golden(), *traffic(application)]
    every: list[LedgerEvent] = _events(application, stored, LedgerSource.of(application).decoder)
    ours: list[LedgerEvent] = _events(
        application, stored, GroupDecoder(application.mapper, entities)
    )
    assert [e.notification_id for e in ours] == [e.notification_id for e in every]
    left = [e for e in ours if e.event is PLACEHOLDER]
    assert left, "nothing was left undecoded"
    assert fold(facts_of_batch(ours), entities) == fold(facts_of_batch(every), entities)


def test_the_views_leave_processed_messages_and_analytics_decodes_them(
    application: BillingApplication,
) -> None:
    topic = "domain.idempotency:ProcessedMessage.Recorded"
    assert GroupDecoder(application.mapper, VIEWS).unread(topic)
    assert not GroupDecoder(application.mapper, Analytics.entities).unread(topic)
    # An unknown topic is decoded, and fails there as it always did.
    assert not GroupDecoder(application.mapper, VIEWS).unread("domain.nowhere:Gone")
