"""Ingest's in-doubt records: a batch whose ledger commit failed without an answer (a commit
that timed out while brokers were down) may still have landed, and is read again. Its
messages are then found already recorded; each is counted as what the failed attempt judged
it, so that the counters stay exact (Guarantee 5).

The recorded outcome tells an applied message from a rejected one, but not whether the
message was already a duplicate the first time (an upstream duplicate, or a second copy
within the batch): the attempt's own judgement says that, kept per source position. An
attempt that failed before judging its messages sent nothing, so it leaves the judgement of
an earlier attempt (whose commit may have landed) as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from consumers.triage import SourceRecord
from domain.commands import Command
from domain.results import CommandResult, Outcome

Position = tuple[str, int, int]


def position(record: SourceRecord) -> Position:
    return (record.topic, record.partition, record.offset)


class InDoubt:
    """The positions of records whose commit failed unanswered, each with whether the
    attempt that sent it counted it a duplicate; and the current attempt's commands and
    results (references only: nothing is computed per batch while nothing fails)."""

    def __init__(self) -> None:
        self._first: dict[Position, bool] = {}
        self._commands: Sequence[tuple[SourceRecord, Command]] = ()
        self._results: Sequence[CommandResult | Exception] | None = None

    def attempt(self, commands: Sequence[tuple[SourceRecord, Command]]) -> None:
        """A batch of these (record, command) pairs is about to be applied: nothing of it
        is judged yet."""
        self._commands, self._results = commands, None

    def judged(self, results: Sequence[CommandResult | Exception]) -> None:
        """The attempt's results, one per command, just before its commit."""
        self._results = results

    def failed(self) -> None:
        """The attempt's commit failed unanswered: its judged records will be read again.
        One that failed before judging sent nothing; an earlier judgement stays."""
        if self._results is None:
            return
        for (record, _), result in zip(self._commands, self._results, strict=True):
            if not isinstance(result, Exception):
                key = position(record)
                self._first[key] = self.counted(record, result) is Outcome.DUPLICATE

    def settled(self) -> None:
        """The attempt committed: none of its records is in doubt any longer."""
        if self._first:
            for record, _ in self._commands:
                self._first.pop(position(record), None)
        self._commands, self._results = (), None

    def counted(self, record: SourceRecord, result: CommandResult) -> Outcome:
        """What ``result`` counts as: a duplicate of an in-doubt record is what the attempt
        that sent it made of it."""
        if result.outcome is not Outcome.DUPLICATE:
            return result.outcome
        if self._first.get(position(record), True):
            return Outcome.DUPLICATE
        return result.first_outcome or Outcome.APPLIED
