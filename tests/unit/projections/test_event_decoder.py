"""The projector's event decoder gives the library mapper's events, and its errors, for real
ledgers: the golden ledger, generated traffic (every upstream message type, OCPI included)
and the projection scenario (every payment and refund path). Events are compared by type
and by the repr of their state, which tells Decimal("1.0") from Decimal("1.00") and an int
from a bool."""

from __future__ import annotations

import json
import zlib
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)
from eventsourcing.utils import TopicError

from domain.application import BillingApplication
from domain.idempotency import ProcessedMessage
from projections.event_decoder import EventDecoder
from projections.facts import HANDLED, IGNORED
from projections.runner import LedgerSource
from tests.unit.projections.scenario import build_ledger
from tests.unit.store.test_fast_json import apply_traffic, golden


def traffic(application: BillingApplication) -> list[StoredEvent]:
    apply_traffic(application, 5)
    build_ledger(application)
    return list(application.recorder.select_notifications(start=1, limit=1_000_000))


def same(mapper: Mapper[Any], stored: StoredEvent) -> type:
    expected = mapper.to_domain_event(stored)
    decoded = EventDecoder(mapper).event(
        stored.originator_id, stored.originator_version, stored.topic, stored.state
    )
    assert type(decoded) is type(expected)
    assert repr(vars(decoded)) == repr(vars(expected))
    return type(expected)


def test_every_event_of_real_ledgers_decodes_as_the_mapper_decodes_it(
    application: BillingApplication,
) -> None:
    stored = [*golden(), *traffic(application)]
    seen = {same(application.mapper, event) for event in stored}
    # The decoder has no code per event type; these are most of those the ledger holds.
    assert len(seen & (HANDLED | IGNORED)) >= 20, sorted(t.__qualname__ for t in seen)


def test_a_source_decodes_a_batch_as_the_mapper_does(application: BillingApplication) -> None:
    notifications = traffic(application)
    events = LedgerSource.of(application).events_of(0, notifications)
    assert [e.notification_id for e in events] == [n.id for n in notifications]
    for ledger_event, notification in zip(events, notifications, strict=True):
        expected = application.mapper.to_domain_event(notification)
        assert repr(vars(ledger_event.event)) == repr(vars(expected))


def recorded(**state: Any) -> StoredEvent:
    return StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic="domain.idempotency:ProcessedMessage.Recorded",
        state=json.dumps(state).encode(),
    )


def test_a_mapper_with_a_compressor_or_a_state_naming_its_version_takes_the_mapper_path(
    application: BillingApplication,
) -> None:
    library = JSONTranscoder()
    application.register_transcodings(library)
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"},
        "event_id": "e-1",
        "message_type": "session.started",
        "outcome": "applied",
        "class_version": 1,
    }
    plain = Mapper[UUID](transcoder=library)
    event = recorded(**state)
    assert same(plain, event) is ProcessedMessage.Recorded
    assert "class_version" not in vars(EventDecoder(plain).event(*fields(event)))

    compressed = Mapper[UUID](transcoder=library, compressor=zlib)  # type: ignore[arg-type]
    event = recorded(**state)
    squeezed = StoredEvent(
        event.originator_id, event.originator_version, event.topic, zlib.compress(event.state)
    )
    assert same(compressed, squeezed) is ProcessedMessage.Recorded


def fields(event: StoredEvent) -> tuple[Any, int, str, bytes]:
    return event.originator_id, event.originator_version, event.topic, event.state


def test_a_bad_state_or_topic_raises_the_mappers_error(application: BillingApplication) -> None:
    decoder = EventDecoder(application.mapper)
    bad = StoredEvent(uuid4(), 1, "domain.idempotency:ProcessedMessage.Recorded", b'{"cut": ')
    with pytest.raises(MapperDeserialisationError) as by_decoder:
        decoder.event(*fields(bad))
    with pytest.raises(MapperDeserialisationError) as by_mapper:
        application.mapper.to_domain_event(bad)
    assert str(by_decoder.value) == str(by_mapper.value)
    with pytest.raises(TopicError):
        decoder.event(uuid4(), 1, "domain.idempotency:NoSuchEvent", b"{}")


PRICED = "domain.session:ChargingSession.Priced"


def counting(mapper: Mapper[Any]) -> list[StoredEvent]:
    """The stored events ``mapper.to_domain_event`` is called with from now on."""
    calls: list[StoredEvent] = []
    library = mapper.to_domain_event

    def to_domain_event(stored: StoredEvent) -> Any:
        calls.append(stored)
        return library(stored)

    mapper.to_domain_event = to_domain_event  # type: ignore[method-assign,assignment]
    return calls


def test_a_price_at_its_class_version_decodes_without_the_mapper_and_an_older_one_upcasts(
    application: BillingApplication,
) -> None:
    current = [e for e in traffic(application) if e.topic == PRICED]
    assert current and all(json.loads(e.state)["class_version"] == 2 for e in current)
    older = []
    for event in current[:3]:
        state = json.loads(event.state)
        del state["class_version"], state["rounding"]  # as written before version 2
        older.append(StoredEvent(*fields(event)[:3], json.dumps(state).encode()))
        named = {**state, "class_version": 1}
        older.append(StoredEvent(*fields(event)[:3], json.dumps(named).encode()))
    mapper = application.mapper
    expected = [mapper.to_domain_event(e) for e in [*current, *older]]
    calls = counting(mapper)
    decoder = EventDecoder(mapper)
    decoded = [decoder.event(*fields(e)) for e in [*current, *older]]
    assert [type(e) for e in decoded] == [type(e) for e in expected]
    assert [repr(vars(e)) for e in decoded] == [repr(vars(e)) for e in expected]
    assert {e.rounding for e in decoded[len(current) :]} == {"half-up"}
    assert calls == older  # only the states that need the upcast took the mapper's path


class MarkingMapper(Mapper[UUID]):
    """A mapper of its own making: its events say they came through it."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        object.__setattr__(event, "marked", True)
        return event


def test_a_mapper_class_of_its_own_decodes_every_event(application: BillingApplication) -> None:
    mapper = MarkingMapper(transcoder=application.mapper.transcoder)
    decoder = EventDecoder(mapper)
    for event in traffic(application)[:50]:
        assert vars(decoder.event(*fields(event)))["marked"] is True
