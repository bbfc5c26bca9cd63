"""Sorting a batch of upstream records into domain commands and dead letters.

Pure: no Kafka, no store. Whatever cannot become a command (bytes that are not a v1
message, or values the domain's command refuses) becomes a dead letter with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consumers.contract import ContractViolation, parse_message
from consumers.dead_letter import DeadLetter, now
from consumers.ocpi_messages import ocpi_command
from consumers.routing import cdr_routing_key, misrouted
from consumers.translate import to_command
from domain.commands import Command
from domain.ocpi_commands import RecordCdr


@dataclass(frozen=True)
class SourceRecord:
    """One upstream record and where it came from (a Kafka position or a file line)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None

    def dead_letter(self, field: str, reason: str) -> DeadLetter:
        return DeadLetter(
            key=self.key,
            value=self.value,
            field=field,
            reason=reason,
            source_topic=self.topic,
            source_partition=self.partition,
            source_offset=self.offset,
            source_timestamp_ms=self.timestamp_ms,
            failed_at=now(),
        )


@dataclass
class Triage:
    commands: list[tuple[SourceRecord, Command]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def triage(records: Iterable[SourceRecord], shards: int = 1) -> Triage:
    """Commands and dead letters; with more than one ledger shard, a record on a partition
    its routing key does not belong to is a dead letter too (consumers/routing.py)."""
    sorted_out = Triage()
    for record in records:
        if record.value is None:  # a tombstone carries no message at all
            sorted_out.dead_letters.append(record.dead_letter("", "empty record (no value)"))
            continue
        try:
            command = _command(record, shards)
            if isinstance(command, tuple):
                sorted_out.dead_letters.append(record.dead_letter(*command))
                continue
        except ContractViolation as violation:
            sorted_out.dead_letters.append(record.dead_letter(violation.field, violation.reason))
        except ValueError as refused:
            sorted_out.dead_letters.append(record.dead_letter("", str(refused)))
        except Exception as error:
            # Our defect, not the batch's: this message alone becomes a dead letter (fixed
            # code can replay it) and the rest of the batch goes on.
            reason = f"internal error while reading the message (replay it once fixed): {error!r}"
            sorted_out.dead_letters.append(record.dead_letter("", reason))
        else:
            sorted_out.commands.append((record, command))
    return sorted_out


def _command(record: SourceRecord, shards: int) -> Command | tuple[str, str]:
    """The record's command, or why it is misrouted (field, reason); raises what the
    contract or the command refuses."""
    command = ocpi_command(record.value)
    if command is None:
        message = parse_message(record.value)
        if shards <= 1:
            # Every record belongs (misrouted's first test), and a model without the field
            # answers getattr by raising inside pydantic: a cost per message for nothing.
            return to_command(message)
        session_id = getattr(message, "session_id", None)
        wrong = misrouted(message.type, session_id, record.key, record.partition, shards)
        return to_command(message) if wrong is None else wrong
    if shards <= 1:
        return command
    # An ocpi.cdr routes by its CDR's key; OCPI tariffs and locations go everywhere.
    key = cdr_routing_key(command.raw()) if isinstance(command, RecordCdr) else None
    wrong = misrouted(
        command.MESSAGE_TYPE.value, key, record.key, record.partition, shards, key_field="cdr.id"
    )
    return command if wrong is None else wrong
