"""One ledger record as an auditor reads it, and the interface of every way to read them all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from store.records import GENESIS_HASH, chain_hash


class LedgerUnavailable(RuntimeError):
    """The ledger (a topic, a SQLite file, an export) cannot be read; the reason says why."""


@dataclass(frozen=True)
class ScannedRecord:
    """A ledger record exactly as found, before any check has trusted it.

    Fields a damaged record lacks are None and ``defect`` says what is wrong with it
    (a missing header, an unreadable number), so a check can name it instead of crashing.
    """

    # 1-based place in the order the records were read (a row of an export, say).
    position: int
    offset: int | None
    notification_id: int | None
    originator_id: str
    originator_version: int | None
    topic: str | None
    state: bytes
    prev_hash: bytes | None = None
    hash: bytes | None = None
    recorded_at: datetime | None = None
    defect: str | None = None
    # On a transaction's last record: the writer's signature over (signed_from, hash), the
    # id of the key that made it, and the first notification id it vouches for.
    key_id: str | None = None
    signature: bytes | None = None
    signed_from: int | None = None

    @property
    def chained(self) -> bool:
        return self.hash is not None

    def where(self) -> str:
        """Where the record is, in the words an auditor looks it up with."""
        parts = []
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.notification_id is not None:
            parts.append(f"notification id {self.notification_id}")
        if not parts:
            parts.append(f"record {self.position}")
        return ", ".join(parts)

    def content_hash(self, prev_hash: bytes) -> bytes | None:
        """chain_hash of this record's content after prev_hash (None when a field is lost)."""
        if self.notification_id is None or self.originator_version is None or self.topic is None:
            return None
        return chain_hash(
            prev_hash,
            self.notification_id,
            self.originator_id,
            self.originator_version,
            self.topic,
            self.state,
        )


class LedgerScan(Protocol):
    """Every record of one ledger in ledger order; each call of records() starts again."""

    @property
    def description(self) -> str:
        """What is read, for reports: 'Kafka topic x at host:port', a file path."""
        ...

    @property
    def chain_origin(self) -> str:
        """How hashes were obtained: 'recorded' by the writer, or 'none' kept at all."""
        ...

    def size_hint(self) -> int | None:
        """About how many records (or offsets) lie ahead, for a progress bar."""
        ...

    def records(self) -> Iterator[ScannedRecord]: ...


class ChainCompletion:
    """Records with their hashes; where a record has none, its chain link is computed.

    An export of a ledger that keeps no hashes (the embedded default) carries the chain
    from then on; records that have recorded hashes keep them, so tampering still shows.
    """

    def __init__(self) -> None:
        self.computed = 0

    def records(self, records: Iterator[ScannedRecord]) -> Iterator[ScannedRecord]:
        prev_hash = GENESIS_HASH
        for found in records:
            record = found
            if record.hash is None:
                computed = record.content_hash(prev_hash)
                if computed is not None:
                    record = replace(record, prev_hash=prev_hash, hash=computed)
                    self.computed += 1
            if record.hash is not None:
                prev_hash = record.hash
            yield record
