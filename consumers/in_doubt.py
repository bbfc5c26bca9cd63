"""Ingest's in-doubt records: a batch whose ledger commit failed without an answer (a commit
that timed out while brokers were down) may still have landed, and is read again. Its
messages are then found already recorded; each is counted as what the failed attempt judged
it, so that the counters stay exact (Guarantee 5).

The recorded outcome tells an applied message from a rejected one, but not whether the
message was already a duplicate the first time (an upstream duplicate, or a second copy
within the batch): the attempt's own judgement says that, kept per source position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consumers.triage import SourceRecord
from domain.results import CommandResult, Outcome

Position = tuple[str, int, int]


def position(record: SourceRecord) -> Position:
    return (record.topic, record.partition, record.offset)


class InDoubt:
    """The positions of records whose commit failed unanswered, each with whether the
    attempt counted it a duplicate (None where the batch failed before it was judged: it
    is then counted as the ledger recorded it)."""

    def __init__(self) -> None:
        self._first: dict[Position, bool | None] = {}
        self._attempt: dict[Position, bool] = {}

    def attempt(self) -> None:
        """A batch is about to be applied: forget the previous attempt's judgement."""
        self._attempt = {}

    def judged(self, counted: Iterable[tuple[SourceRecord, Outcome]]) -> None:
        """What the batch counts its messages as, just before its commit (the latest call
        wins: a batch redone one message at a time is judged again)."""
        self._attempt = {
            position(record): outcome is Outcome.DUPLICATE for record, outcome in counted
        }

    def failed(self, records: Sequence[SourceRecord]) -> None:
        """The commit of ``records`` failed unanswered: they will be read again."""
        for record in records:
            self._first[position(record)] = self._attempt.get(position(record))

    def settled(self, records: Sequence[SourceRecord]) -> None:
        """``records`` committed: none of them is in doubt any longer."""
        for record in records:
            self._first.pop(position(record), None)

    def counted(self, record: SourceRecord, result: CommandResult) -> Outcome:
        """What ``result`` counts as: a duplicate of an in-doubt record is what its first
        attempt made of it."""
        if result.outcome is not Outcome.DUPLICATE:
            return result.outcome
        key = position(record)
        if key not in self._first or self._first[key]:
            return Outcome.DUPLICATE
        return result.first_outcome or Outcome.APPLIED
