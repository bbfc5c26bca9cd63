"""One ingest batch: records in, ledger changes and dead letters out, every record counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consumers.counters import IngestCounters
from consumers.dead_letter import DeadLetter
from consumers.in_doubt import InDoubt
from consumers.triage import SourceRecord, triage
from domain.application import FinishBatch
from domain.commands import Command
from domain.errors import IdempotencyConflictError, InvalidValueError
from domain.results import CommandResult, Outcome


class CommandHandler(Protocol):
    """The write side as ingest sees it (BillingApplication): a batch of commands in, one
    result per command out, or the exception that makes that message a dead letter."""

    def handle_batch(
        self,
        commands: Sequence[Command],
        finish: FinishBatch | None = None,
        redoing: FinishBatch | None = None,
    ) -> list[CommandResult | Exception]: ...

    def forget_kept(self) -> None:
        """Drop the aggregates kept from earlier batches: a deferred commit of theirs failed."""


class BatchTransaction(Protocol):
    """How a store commits a batch's dead letters and source offsets with its events."""

    def attach(self, records: Sequence[SourceRecord], dead_letters: Sequence[DeadLetter]) -> None:
        """Commit these with the next save of this thread (the batch's one save, which
        may return before its commit: consumers/ingest.py's _Deferred)."""

    def commit_attached(self) -> None:
        """Commit what no save took (after the one-at-a-time fallback), on its own."""


@dataclass
class BatchOutcome:
    counters: IngestCounters = field(default_factory=IngestCounters)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)


def apply_batch(
    handler: CommandHandler,
    records: Sequence[SourceRecord],
    transaction: BatchTransaction | None = None,
    shards: int = 1,
    in_doubt: InDoubt | None = None,
) -> BatchOutcome:
    """Apply a batch; the ledger has the result when this returns (or it raised).

    With a ``transaction`` (the Kafka ledger), the batch's dead letters and the records'
    next offsets commit in the same transaction as the batch's events. With more than one
    ledger ``shards``, the records are one shard's and misrouted ones are dead letters.
    ``in_doubt`` holds the records whose earlier transaction failed without an answer (a
    commit that timed out may still have landed): a duplicate among them is counted as
    what that attempt judged it; this attempt's judgement is kept there in turn, for the
    caller to mark in doubt if its commit fails unanswered (``in_doubt.failed()``), or
    settled once it committed (consumers/in_doubt.py).
    """
    outcome = BatchOutcome()
    sorted_out = triage(records, shards)
    if in_doubt is None:
        in_doubt = InDoubt()
    in_doubt.attempt(sorted_out.commands)

    def finish(results: list[CommandResult | Exception]) -> None:
        outcome.dead_letters = list(sorted_out.dead_letters)
        for (record, _), result in zip(sorted_out.commands, results, strict=True):
            if isinstance(result, Exception):
                outcome.dead_letters.append(record.dead_letter(*_why(result)))
        in_doubt.judged(results)
        if transaction is not None:
            transaction.attach(records, outcome.dead_letters)

    # The handler calls finish exactly once, whichever way the batch went.
    results = handler.handle_batch(
        [command for _, command in sorted_out.commands], finish, in_doubt.redoing
    )
    if transaction is not None:
        transaction.commit_attached()
    for (record, _), result in zip(sorted_out.commands, results, strict=True):
        if isinstance(result, Exception):
            continue
        outcome.results.append(result)
        first = in_doubt.counted(record, result)
        if first is Outcome.DUPLICATE:
            outcome.counters.duplicates += 1
        else:
            outcome.counters.applied += 1
            if first is Outcome.REJECTED:
                outcome.counters.rejected += 1
    outcome.counters.consumed = len(records)
    outcome.counters.dead_lettered = len(outcome.dead_letters)
    outcome.counters.check()
    return outcome


def _why(error: Exception) -> tuple[str, str]:
    """The dead letter's field and reason for a command that could not be applied."""
    if isinstance(error, IdempotencyConflictError):
        return "event_id", str(error)
    if isinstance(error, InvalidValueError):
        return "", str(error)
    return "", f"internal error while applying the message (replay it once fixed): {error!r}"
