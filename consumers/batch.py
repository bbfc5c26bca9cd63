"""One ingest batch: records in, ledger changes and dead letters out, every record counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from consumers.accounting import IngestCounters
from consumers.dead_letter import DeadLetter
from consumers.triage import SourceRecord, triage
from domain.commands import Command
from domain.errors import IdempotencyConflictError, InvalidValueError
from domain.results import CommandResult, Outcome


class CommandHandler(Protocol):
    """The write side as ingest sees it (BillingApplication): a batch of commands in, one
    result per command out, or the exception that makes that message a dead letter."""

    def handle_batch(
        self, commands: Sequence[Command], **save_kwargs: Any
    ) -> list[CommandResult | Exception]: ...


@dataclass
class BatchOutcome:
    counters: IngestCounters = field(default_factory=IngestCounters)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)


def apply_batch(handler: CommandHandler, records: Sequence[SourceRecord]) -> BatchOutcome:
    """Apply a batch; the ledger has the result when this returns (or it raised)."""
    outcome = BatchOutcome()
    sorted_out = triage(records)
    outcome.dead_letters.extend(sorted_out.dead_letters)
    results = handler.handle_batch([command for _, command in sorted_out.commands])
    for (record, _), result in zip(sorted_out.commands, results, strict=True):
        if isinstance(result, Exception):
            outcome.dead_letters.append(record.dead_letter(*_why(result)))
            continue
        outcome.results.append(result)
        if result.outcome is Outcome.DUPLICATE:
            outcome.counters.duplicates += 1
        else:
            outcome.counters.applied += 1
            if result.outcome is Outcome.REJECTED:
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
