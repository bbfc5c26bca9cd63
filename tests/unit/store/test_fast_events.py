"""`store/fast_events.py` stores what the library's mapper and event store store.

Every event of the golden ledger and of a generated day of traffic (all upstream message
types, OCPI included, a class-versioned event among them) is mapped by both mappers and put
by both event stores into recorders of their own: the stored events, notifications and
recordings must be equal, hash alike and print alike, with and without a compressor.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import EventStore, Mapper, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from domain.application import BillingApplication
from store.fast_events import FastEventStore, FastMapper
from tests.unit.store.test_fast_json import apply_traffic, golden, transcoders


def generated_ledger(application: BillingApplication) -> list[Notification]:
    """A generated day of traffic (every upstream message type, OCPI included), stored."""
    apply_traffic(application, 9)
    return application.recorder.select_notifications(start=1, limit=1_000_000)


@pytest.fixture
def events(application: BillingApplication) -> list[list[Any]]:
    """The golden ledger's events and a generated day's, decoded: two ledgers."""
    mapper = Mapper[UUID](transcoders(application)[0])
    ledgers: list[list[StoredEvent]] = [list(golden()), list(generated_ledger(application))]
    return [[mapper.to_domain_event(event) for event in ledger] for ledger in ledgers]


def assert_alike(made: Any, expected: Any) -> None:
    assert type(made) is type(expected)
    assert made == expected
    assert hash(made) == hash(expected)
    assert repr(made) == repr(expected)
    assert list(vars(made).items()) == list(vars(expected).items())


@pytest.mark.parametrize("compressed", [False, True])
def test_every_event_is_stored_as_the_library_stores_it(
    application: BillingApplication, events: list[list[Any]], compressed: bool
) -> None:
    every = [event for ledger in events for event in ledger]
    assert any(getattr(type(event), "class_version", 1) > 1 for event in every)
    assert any("Roaming" in type(event).__qualname__ for event in every)
    library, _ = transcoders(application)
    compressor = ZlibCompressor() if compressed else None
    by_library = Mapper[UUID](library, compressor=compressor)
    by_fast = FastMapper[UUID](library, compressor=compressor)
    for event in every:
        assert_alike(by_fast.to_stored_event(event), by_library.to_stored_event(event))

    for ledger in events:
        library_store = EventStore[UUID](by_library, POPOApplicationRecorder())
        fast_store = FastEventStore[UUID](by_fast, POPOApplicationRecorder())
        for start in range(0, len(ledger), 50):
            chunk = ledger[start : start + 50]
            expected = library_store.put(chunk)
            made = fast_store.put(chunk)
            assert len(made) == len(expected) == len(chunk)
            for fast_recording, library_recording in zip(made, expected, strict=True):
                assert_alike(fast_recording.notification, library_recording.notification)
                assert fast_recording.domain_event is library_recording.domain_event
                assert repr(fast_recording) == repr(library_recording)
                assert fast_recording == library_recording


def test_nothing_recorded_gives_no_recordings(application: BillingApplication) -> None:
    library, _ = transcoders(application)
    fast_store = FastEventStore[UUID](FastMapper[UUID](library), POPOApplicationRecorder())
    assert fast_store.put([]) == []


class _MarkingMapper(Mapper[UUID]):
    """A mapper whose stored events carry one attribute more than their four fields."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        object.__setattr__(stored, "marked", True)
        return stored


def test_a_notification_takes_only_the_stored_event_s_four_fields(
    application: BillingApplication, events: list[list[Any]]
) -> None:
    library, _ = transcoders(application)
    mapper = _MarkingMapper(library)
    chunk = events[0][:20]
    expected = EventStore[UUID](mapper, POPOApplicationRecorder()).put(chunk)
    made = FastEventStore[UUID](mapper, POPOApplicationRecorder()).put(chunk)
    assert len(made) == len(chunk)
    for fast_recording, library_recording in zip(made, expected, strict=True):
        assert not hasattr(fast_recording.notification, "marked")
        assert_alike(fast_recording.notification, library_recording.notification)
