"""Ingest's in-doubt records: a batch whose ledger commit failed without an answer (a commit
that timed out while brokers were down) may still have landed, and is read again. Its
messages are then found already recorded; each is counted as what the failed attempt judged
it, so that the counters stay exact (Guarantee 5).

The recorded outcome tells an applied message from a rejected one, but not whether the
message was already a duplicate the first time (an upstream duplicate, or a second copy
within the batch): the attempt's own judgement says that, kept per source position. An
attempt that failed before judging its messages sent nothing, so it leaves the judgement of
an earlier attempt (whose commit may have landed) as it was.

A batch redone one message at a time (after a command error or a concurrent writer) saves
each message in its own transaction: those saved before a failing save are judged, the one
whose save failed unanswered was new (a message found recorded is not saved), and the ones
after it were never sent.

Dead letters ride in the batch's transaction with its offsets: a landed attempt published
them. Before a batch is read again after an attempt that may have landed, ingest settles that
attempt (the writer's recovery) and asks the group's committed offset: the records below it
were committed, dead letters and all, and their dead letters are not published again (they
are counted, as the attempt judged them). That offset is kept (``landed_below``) until a
committed batch reaches it: the re-read may come in several polls, and no batch commits an
offset below it (which would let a restart publish those dead letters again).

A batch that commits a message's first record shows that no in-doubt attempt holding a copy
of it (on another partition feeding the same ledger, read again later) landed: those copies
are duplicates. One InDoubt serves one ledger: sharded, each shard has its own (a tariff is
recorded on every shard).

Kept in memory, per process: a message's record in the ledger holds no source position
(adding one would change every ledger's bytes). A shard that moves to another process takes
its InDoubt with it (ingest drops it): if its in-doubt commit did not land, the new owner
reads the batch again and counts it; if it landed, the offsets moved with it and nobody
reads the batch again, so its messages are missing from the counters (never from the
ledger). Two copies on two partitions whose commits both failed unanswered are both counted
as they were judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consumers.triage import SourceRecord
from domain.commands import Command
from domain.results import CommandResult, Outcome
from store.index import IndexUnavailable
from store.reader import LedgerReadError

Position = tuple[str, int, int]


def position(record: SourceRecord) -> Position:
    return (record.topic, record.partition, record.offset)


@dataclass
class Attempt:
    """One attempt at a batch: its (record, command) pairs, and its results once judged
    (growing one by one while redone a message at a time)."""

    commands: Sequence[tuple[SourceRecord, Command]] = ()
    results: Sequence[CommandResult | Exception] | None = None
    redone: bool = False


class InDoubt:
    """The positions of records whose commit failed unanswered, each with its message's
    event_id and whether the attempt that sent it counted it a duplicate; and the current
    attempt's commands and results (references only: nothing is computed per batch while
    nothing fails)."""

    def __init__(self) -> None:
        self._first: dict[Position, tuple[str, bool]] = {}
        # The batch being applied; a deferred commit's caller keeps its attempt (``current``)
        # to settle it, or fail it, once the answer comes, after the next one started.
        self.current = Attempt()
        # An attempt judged its batch, attached its dead letters and offsets, and failed
        # unanswered: its transaction may have landed, until a commit settles it.
        self.may_have_landed = False
        # The offset below which a landed attempt committed the records (0: none).
        self.landed_below = 0

    def landed(self, committed: int) -> None:
        """The group's committed offset once the attempt that may have landed is settled."""
        self.landed_below = max(self.landed_below, committed)

    def committed_to(self, next_offset: int) -> None:
        """A batch committed the partition's offset ``next_offset``: the re-read of what
        landed is over once that reaches ``landed_below``."""
        if next_offset >= self.landed_below:
            self.landed_below = 0

    @property
    def holds_nothing(self) -> bool:
        """Nothing is in doubt: no attempt may have landed, no judgement is held."""
        return not self.may_have_landed and not self.landed_below and not self._first

    def attempt(self, commands: Sequence[tuple[SourceRecord, Command]]) -> None:
        """A batch of these (record, command) pairs is about to be applied: nothing of it
        is judged yet."""
        self.current = Attempt(commands)

    def judged(self, results: Sequence[CommandResult | Exception]) -> None:
        """The attempt's results, one per command, just before its commit."""
        self.current.results, self.current.redone = results, False

    def redoing(self, results: Sequence[CommandResult | Exception]) -> None:
        """The batch is redone one message at a time, each saved alone: ``results`` grows
        as each is saved (the batch's judgement before the redo was never committed)."""
        self.current.results, self.current.redone = results, True

    def failed(self, error: Exception, attempt: Attempt | None = None) -> None:
        """The attempt's commit (the current one's unless given) failed unanswered with
        ``error``: its judged records, and a message whose save alone failed, will be read
        again. One that failed before judging sent nothing; an earlier judgement stays."""
        attempt = attempt or self.current
        results = attempt.results
        if results is None:
            return
        self.may_have_landed = True
        for (record, command), result in zip(attempt.commands, results, strict=False):
            if not isinstance(result, Exception):
                duplicate = self.counted(record, result) is Outcome.DUPLICATE
                self._first[position(record)] = (command.event_id, duplicate)
        sent = not isinstance(error, (LedgerReadError, IndexUnavailable))
        if attempt.redone and len(results) < len(attempt.commands) and sent:
            # Saved only if new; a copy recorded since its earlier attempt stays as judged.
            record, command = attempt.commands[len(results)]
            self._first.setdefault(position(record), (command.event_id, False))

    def settled(self, attempt: Attempt | None = None) -> None:
        """The attempt (the current one unless given) committed: none of its records is in
        doubt any longer, nor any copy of a message it recorded first (the attempt holding
        that copy did not land)."""
        attempt = attempt or self.current
        self.may_have_landed = False
        if self._first:
            # Counted before this attempt's own positions leave the record: a copy counted
            # as applied through its held judgement makes the other copies duplicates too.
            first = {
                result.event_id
                for (record, _), result in zip(
                    attempt.commands, attempt.results or (), strict=False
                )
                if isinstance(result, CommandResult)
                and self.counted(record, result) is not Outcome.DUPLICATE
            }
            for record, _ in attempt.commands:
                self._first.pop(position(record), None)
            self._first = {key: held for key, held in self._first.items() if held[0] not in first}
        if attempt is self.current:
            self.current = Attempt()

    def counted(self, record: SourceRecord, result: CommandResult) -> Outcome:
        """What ``result`` counts as: a duplicate of an in-doubt record is what the attempt
        that sent it made of it."""
        if result.outcome is not Outcome.DUPLICATE:
            return result.outcome
        held = self._first.get(position(record))
        if held is None or held[1]:
            return Outcome.DUPLICATE
        return result.first_outcome or Outcome.APPLIED
