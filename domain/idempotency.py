"""The ProcessedMessage aggregate: one per upstream event_id, saved with what it changed.

Saved in the same ``save()`` as the business aggregates, so "this message was applied" and
its effects are atomic on any event store. A second create of the same id is the library's
IntegrityError; the stored content hash then tells a duplicate from a reused key.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.creation import create
from domain.ids import processed_message_id


class ProcessedMessage(Aggregate):
    """The record that an upstream message was applied (or rejected), and its content hash."""

    class Recorded(Aggregate.Created):
        event_id: str
        message_type: str
        content_sha256: str
        outcome: str
        rejection_reason: str | None

        def apply(self, aggregate: ProcessedMessage) -> None:
            aggregate.event_id = self.event_id
            aggregate.message_type = self.message_type
            aggregate.content_sha256 = self.content_sha256
            aggregate.outcome = self.outcome
            aggregate.rejection_reason = self.rejection_reason

    def __init__(self) -> None:
        self.event_id = ""
        self.message_type = ""
        self.content_sha256 = ""
        self.outcome = ""
        self.rejection_reason: str | None = None

    @classmethod
    def record(
        cls,
        *,
        event_id: str,
        message_type: str,
        content_sha256: str,
        outcome: str,
        rejection_reason: str | None,
    ) -> ProcessedMessage:
        return create(
            cls,
            cls.Recorded,
            id=processed_message_id(event_id),
            event_id=event_id,
            message_type=message_type,
            content_sha256=content_sha256,
            outcome=outcome,
            rejection_reason=rejection_reason,
        )
