"""What a command changed: the frozen result every application method returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class RecordedEvent:
    """One stored domain event, named as projectors dispatch on it (``Payment.Captured``)."""

    name: str
    originator_id: UUID
    originator_version: int


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one upstream message.

    ``rejection_reason`` is set when the outcome is rejected, and for a duplicate of a
    message that was rejected the first time (``first_outcome`` says what happened then).
    """

    event_id: str
    message_type: str
    outcome: Outcome
    rejection_reason: str | None = None
    events: tuple[RecordedEvent, ...] = ()
    first_outcome: Outcome | None = None

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(event.name for event in self.events)
