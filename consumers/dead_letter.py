"""Dead-letter records: the original bytes of a rejected upstream record, with why and whence.

The value is the original value byte for byte; everything we add goes into headers, so
that a fixed message can be re-published from the dead-letter topic unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

HEADER_PREFIX = "evledger.dlq."


@dataclass(frozen=True)
class DeadLetter:
    """One upstream record that could not become a command."""

    key: bytes | None
    value: bytes
    field: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp_ms: int | None
    failed_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        values = {
            "error.field": self.field,
            "error.reason": self.reason,
            "source.topic": self.source_topic,
            "source.partition": str(self.source_partition),
            "source.offset": str(self.source_offset),
            "source.timestamp_ms": ""
            if self.source_timestamp_ms is None
            else str(self.source_timestamp_ms),
            "failed_at": self.failed_at.isoformat(),
        }
        return [(HEADER_PREFIX + name, value.encode()) for name, value in values.items()]

    @classmethod
    def from_headers(
        cls, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> DeadLetter:
        """Read a dead-letter record back, e.g. for `evledger` reports and tests."""
        found = {
            name.removeprefix(HEADER_PREFIX): raw.decode()
            for name, raw in headers
            if name.startswith(HEADER_PREFIX)
        }
        timestamp = found.get("source.timestamp_ms", "")
        return cls(
            key=key,
            value=value,
            field=found["error.field"],
            reason=found["error.reason"],
            source_topic=found["source.topic"],
            source_partition=int(found["source.partition"]),
            source_offset=int(found["source.offset"]),
            source_timestamp_ms=int(timestamp) if timestamp else None,
            failed_at=datetime.fromisoformat(found["failed_at"]),
        )


def now() -> datetime:
    return datetime.now(UTC)
