"""The library's mapper and event store, with the per-event steps of a save made cheaper:
the same stored events, notifications and recordings.

Every ledger event passes through ``Mapper.to_stored_event`` and ``EventStore.put``
(about three per ingested message). Of their cost beyond the JSON, most was building
frozen dataclasses (``StoredEvent``, ``Notification``, ``Recording``: their generated
``__init__`` sets each field through ``object.__setattr__``) and looking up each event
class's topic and class version. Here each class's topic and version are kept once, and
those three values are made by filling the instance's ``__dict__`` with the fields their
``__init__`` would set: they have no ``__post_init__`` and no slots, so the objects are
equal, hash and print alike (tests/unit/store/test_fast_events.py holds both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic

from eventsourcing.domain import DomainEventProtocol, TAggregateID
from eventsourcing.persistence import EventStore, Mapper, Notification, Recording, StoredEvent
from eventsourcing.utils import get_topic

from store.frozen import made

_new = object.__new__


class FastMapper(Mapper[TAggregateID], Generic[TAggregateID]):
    """``Mapper`` whose ``to_stored_event`` keeps each event class's topic and version."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kinds: dict[type, tuple[str, int]] = {}

    def to_stored_event(self, domain_event: DomainEventProtocol[TAggregateID]) -> StoredEvent:
        kind = type(domain_event)
        known = self._kinds.get(kind)
        if known is None:
            # get_topic also registers the topic, as the library's mapper has it do.
            known = self._kinds[kind] = (get_topic(kind), getattr(kind, "class_version", 1))
        topic, class_version = known
        event_state = dict(vars(domain_event))
        # The stored event filled as made() fills it, in its fields' order, without the
        # keyword dict of a call (three or more stored events a message).
        stored = _new(StoredEvent)
        fields = vars(stored)
        fields["originator_id"] = event_state.pop("originator_id")
        fields["originator_version"] = event_state.pop("originator_version")
        fields["topic"] = topic
        if class_version > 1:
            event_state["class_version"] = class_version
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        fields["state"] = stored_state
        return stored


class FastEventStore(EventStore[TAggregateID], Generic[TAggregateID]):
    """``EventStore`` whose ``put`` makes its notifications and recordings directly."""

    def put(
        self, domain_events: Sequence[DomainEventProtocol[TAggregateID]], **kwargs: Any
    ) -> list[Recording[TAggregateID]]:
        stored_events = list(map(self.mapper.to_stored_event, domain_events))
        recordings: list[Recording[TAggregateID]] = []
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        if notification_ids:
            assert len(notification_ids) == len(stored_events)
            for domain_event, stored, notification_id in zip(
                domain_events, stored_events, notification_ids, strict=True
            ):
                notification = made(
                    Notification,
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=stored.state,
                    id=notification_id,
                )
                recording: Recording[TAggregateID] = made(
                    Recording, domain_event=domain_event, notification=notification
                )
                recordings.append(recording)
        return recordings
